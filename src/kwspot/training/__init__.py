"""The training stage: each model's published recipe (``recipes``), the run's configuration
(``config``), batched augmentation in torch (``augment``) and one training loop with exact
resume (``loop``). ``kwspot.training.train`` is the loop's entry point."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "train":  # lazily: importing the configs must not pull in the whole loop
        from kwspot.training.loop import train

        return train
    raise AttributeError(name)
