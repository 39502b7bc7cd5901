"""Small stand-ins for an exported model: they satisfy ``kwspot.runtime.model.KeywordModel``
and compute posteriors from the waveform directly, so detector logic is tested on audio whose
right answer is obvious."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

RATE = 16000


class FakeModel:
    labels: ClassVar[list[str]] = ["_silence_", "_unknown_"]
    sample_rate = RATE
    window_samples = RATE
    path = Path("fake")

    def __init__(self) -> None:
        self.thresholds: dict[str, float] = {}

    def posteriors(self, windows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def frontend(self) -> None:
        return None  # no network graph: the engine scores whole windows with posteriors()

    def network_posteriors(self, features: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def middle(windows: np.ndarray) -> np.ndarray:
    """The middle half of each window, where these fakes look for their 'keyword'."""
    return np.atleast_2d(windows)[:, RATE // 4 : 3 * RATE // 4]
