"""The streaming front end of wake-word exports: audio -> one speech embedding per 80 ms, each
from its own 12,512 samples, run in ONNX Runtime from the export's ``<name>.embed.onnx``.

It is a ``FramedFrontend`` like ``NumpyFrontend`` (``cfg``, ``reset``, ``push``, ``frames``), so the
streaming engine treats embeddings as feature frames: each is computed once per stream, and the
network graph runs on the last 16 every hop. A window scored this way equals the audio-in graph
on the same 1.98 s (both compute every embedding from its own samples).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from kwspot.errors import KwspotError
from kwspot.runtime.frontend import FramedFrontend


@dataclass(frozen=True)
class EmbeddingFeatures:
    """What the engine reads from a front end's ``cfg``."""

    sample_rate: int
    frame_samples: int  # audio per embedding (12,512)
    hop_length: int  # samples between embeddings (1,280)
    num_frames: int  # embeddings per window (16)
    num_channels: int  # embedding size (96)

    @property
    def clip_samples(self) -> int:
        return self.frame_samples + self.hop_length * (self.num_frames - 1)

    @property
    def hop_ms(self) -> float:
        return 1000 * self.hop_length / self.sample_rate

    @classmethod
    def from_card(cls, entry: dict[str, Any], sample_rate: int, card_file: Path
                  ) -> EmbeddingFeatures:
        try:
            values = [int(entry[k]) for k in ("frame_samples", "hop_samples", "frames", "dim")]
        except (KeyError, TypeError, ValueError):
            raise KwspotError(f"{card_file}: 'embedding' needs integer frame_samples, "
                              "hop_samples, frames and dim") from None
        if min(values) <= 0:
            raise KwspotError(f"{card_file}: 'embedding' sizes must be positive")
        return cls(sample_rate, *values)


class EmbeddingFrontend(FramedFrontend):
    """One stream's embeddings; ``session`` is shared by every stream of the model."""

    def __init__(self, cfg: EmbeddingFeatures, session: ort.InferenceSession) -> None:
        self.cfg = cfg
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.reset()

    def frames(self, audio: np.ndarray) -> np.ndarray:
        """(S,) -> (96, T), T = 1 + (S - 12,512) // 1,280; no state used or kept."""
        cfg = self.cfg
        audio = np.asarray(audio, np.float32)
        count = 0 if len(audio) < cfg.frame_samples else \
            1 + (len(audio) - cfg.frame_samples) // cfg.hop_length
        if count == 0:
            return np.zeros((cfg.num_channels, 0), np.float32)
        view = np.lib.stride_tricks.sliding_window_view(audio, cfg.frame_samples)
        patches = np.ascontiguousarray(view[: count * cfg.hop_length : cfg.hop_length])
        out = [self.session.run(None, {self.input_name: patches[i : i + 256]})[0]
               for i in range(0, count, 256)]
        return np.ascontiguousarray(np.concatenate(out).T)
