"""What ``kwspot train-embedding`` builds, and the checks made before anything is decoded.

Kept apart from ``keywords.py`` (torch, onnxruntime) so that the command line can show its
defaults without importing them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kwspot.errors import KwspotError

if TYPE_CHECKING:
    from kwspot.datasets import DataConfig

RATE = 16000


@dataclass(frozen=True)
class EmbeddingTrainConfig:
    """What ``train_embedding_classifier`` builds (defaults: the shipped model's recipe)."""

    data: DataConfig
    name: str = "model"
    keyword_copies: int = 4  # augmented windows per training clip of each kind
    unknown_copies: int = 1
    silence_copies: int = 3
    context: float = 0.7  # share of windows with non-keyword speech around the clip
    unknown_weight: float = 4.0  # x the balanced loss weight of _unknown_
    epochs: int = 40
    seed: int = 0
    heads: int = 1  # the final model averages this many heads (seeds seed, seed + 1, ...)
    mine_streams: tuple[str, ...] = ()
    mine_models: tuple[str, ...] = ()  # given round models (exports), in order
    mine_rounds: int = 0  # rounds trained here, after the given ones
    mine_threshold: float = 0.5
    mine_limit: int = 8000  # mined windows per round at most
    mine_margin_s: float = 0.0  # keep mined windows this far from true keywords too
    threads: int = 0
    command: str = ""  # how it was made, for the card

    def check(self) -> None:
        """Refuse bad settings before anything is decoded or embedded (one line each)."""
        for name in ("keyword_copies", "unknown_copies", "silence_copies", "epochs",
                     "mine_limit", "heads"):
            if getattr(self, name) < 1:
                raise KwspotError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.context <= 1.0:
            raise KwspotError(f"context must be in [0, 1], got {self.context}")
        if not (self.unknown_weight > 0 and math.isfinite(self.unknown_weight)):
            raise KwspotError(f"unknown_weight must be positive, got {self.unknown_weight}")
        if self.mine_rounds < 0 or self.threads < 0:
            raise KwspotError("mine_rounds and threads must be >= 0")
        if not (self.mine_margin_s >= 0 and math.isfinite(self.mine_margin_s)):
            raise KwspotError(f"mine_margin_s must be >= 0, got {self.mine_margin_s}")
        if (self.mine_rounds or self.mine_models) and not self.mine_streams:
            raise KwspotError("mining needs streams of training audio (mine_streams; "
                              "`kwspot streams --split train` makes them)")
        if not 0.0 < self.mine_threshold < 1.0:
            raise KwspotError(f"mine_threshold must be in (0, 1), got {self.mine_threshold}")
        for path in self.mine_models:
            if not Path(path).is_file():
                raise KwspotError(f"{path}: not found")
        for stream in self.mine_streams:
            check_training_stream(stream)


def check_training_stream(stream: str | Path) -> None:
    """``kwspot.evaluate.mining.training_stream``'s check, plus the rate mining reads at."""
    import soundfile as sf

    from kwspot.evaluate.mining import training_stream

    wav, _truth = training_stream(stream)
    if not wav.is_file():
        raise KwspotError(f"{wav}: not found")
    if sf.info(str(wav)).samplerate != RATE:  # windows are read straight from the file
        raise KwspotError(f"{wav}: not {RATE} Hz; mining reads 16 kHz streams")
