"""Training configuration as nested frozen dataclasses, written to and read from ``config.json``
in the run directory so that every artifact says how it was made."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kwspot.datasets import DataConfig
from kwspot.errors import KwspotError
from kwspot.features import FeatureConfig
from kwspot.training.augment import AugmentConfig, SpecAugmentConfig

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("piecewise", "cosine")


@dataclass(frozen=True)
class OptimConfig:
    """The TC-ResNet paper's recipe by default: SGD+momentum, lr 0.1 -> 0.01 -> 0.001 at
    10k/20k of 30k. ``schedule="cosine"`` (BC-ResNet's): a linear warm-up to ``lr_values[0]``
    over ``warmup_steps``, then a cosine decay to zero; ``lr_boundaries`` are then unused."""

    steps: int = 30_000
    batch_size: int = 100
    lr_values: tuple[float, ...] = (0.1, 0.01, 0.001)
    lr_boundaries: tuple[int, ...] = (10_000, 20_000)
    momentum: float = 0.9
    weight_decay: float = 1e-3
    optimizer: str = "sgd"
    schedule: str = "piecewise"
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        if self.steps <= 0 or self.batch_size <= 0:
            raise KwspotError(f"--steps and --batch-size must be positive, got {self.steps} "
                              f"and {self.batch_size}")
        if not self.lr_values:
            raise KwspotError("need at least one learning rate")
        if self.optimizer not in OPTIMIZERS:
            raise KwspotError(f"unknown optimizer {self.optimizer!r}; choose from {OPTIMIZERS}")
        if self.schedule not in SCHEDULES:
            raise KwspotError(f"unknown schedule {self.schedule!r}; choose from {SCHEDULES}")
        if not 0 <= self.warmup_steps < self.steps:
            raise KwspotError(f"warm-up must be 0 or more and shorter than the run, got "
                              f"{self.warmup_steps} of {self.steps} steps")
        if self.schedule == "cosine":
            return
        if len(self.lr_values) != len(self.lr_boundaries) + 1:
            raise KwspotError("need exactly one more learning rate than boundaries")
        if list(self.lr_boundaries) != sorted(self.lr_boundaries):
            raise KwspotError("learning-rate boundaries must increase")
        if self.steps <= 0 or self.batch_size <= 0:
            raise KwspotError(f"--steps and --batch-size must be positive, got {self.steps} "
                              f"and {self.batch_size}")

    def lr_at(self, step: int) -> float:
        if self.schedule == "cosine":
            peak = self.lr_values[0]
            if step < self.warmup_steps:
                return peak * (step + 1) / self.warmup_steps
            done = (step - self.warmup_steps) / (self.steps - self.warmup_steps)
            return 0.5 * peak * (1.0 + math.cos(math.pi * min(done, 1.0)))
        for boundary, value in zip(self.lr_boundaries, self.lr_values, strict=False):
            if step < boundary:
                return value
        return self.lr_values[-1]

    def scaled_to(self, steps: int) -> OptimConfig:
        """Same schedule shape over a different number of steps."""
        ratio = steps / self.steps
        bounds = tuple(max(1, round(b * ratio)) for b in self.lr_boundaries)
        warmup = min(round(self.warmup_steps * ratio), steps - 1)
        return dataclasses.replace(self, steps=steps, lr_boundaries=bounds, warmup_steps=warmup)


@dataclass(frozen=True)
class TrainConfig:
    data: DataConfig
    model: str = "tc-resnet8"
    dropout: float = 0.5
    features: FeatureConfig = field(default_factory=FeatureConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval_every: int = 1000
    seed: int = 0
    threads: int = 0  # 0: all cores
    device: str = "cpu"  # where the network trains: "cpu", "cuda" or "cuda:N"
    init: str | None = None  # start from this checkpoint's weights (fine-tuning), not random
    spec_augment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)

    def __post_init__(self) -> None:
        if self.eval_every < 1:
            raise KwspotError(f"--eval-every must be at least 1, got {self.eval_every}")
        if not 0.0 <= self.dropout < 1.0:
            raise KwspotError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.threads < 0:
            raise KwspotError(f"--threads must be 0 (all cores) or more, got {self.threads}")
        if not re.fullmatch(r"cpu|cuda(:\d+)?", self.device):
            raise KwspotError(f"--device must be cpu, cuda or cuda:N, got {self.device!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        from kwspot.fileio import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        return from_dict(cls, json.loads(Path(path).read_text()))


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild nested dataclasses from JSON, turning lists back into tuples."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value, hint = data[f.name], hints[f.name]
        if dataclasses.is_dataclass(hint):
            value = from_dict(hint, value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)
