"""MFCC and log-mel as one torch module, used in training, evaluation and inside the exported graph.

Shapes: audio (B, S) float32 at ``sample_rate`` -> features (B, C, T), C = coefficients or mel
bins, T = frames. TC-ResNet reads C as channels and convolves over T.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from kwspot.errors import KwspotError

FeatureKind = Literal["mfcc", "logmel"]


@dataclass(frozen=True)
class FeatureConfig:
    """Front-end settings; the TC-ResNet defaults give 40 MFCCs x 98 frames for 1 s of audio."""

    kind: FeatureKind = "mfcc"
    sample_rate: int = 16000
    clip_ms: float = 1000.0
    window_ms: float = 30.0
    hop_ms: float = 10.0
    n_mels: int = 40
    n_mfcc: int = 40
    f_min: float = 20.0
    f_max: float = 4000.0
    log_offset: float = 1e-6

    def __post_init__(self) -> None:
        if self.kind not in ("mfcc", "logmel"):
            raise KwspotError(f"unknown feature kind {self.kind!r}; choose 'mfcc' or 'logmel'")
        if self.kind == "mfcc" and self.n_mfcc > self.n_mels:
            raise KwspotError(f"n_mfcc={self.n_mfcc} cannot exceed n_mels={self.n_mels}")
        if not 0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise KwspotError(
                f"need 0 <= f_min < f_max <= Nyquist; got {self.f_min}..{self.f_max} Hz"
            )
        if self.window_ms <= 0 or self.hop_ms <= 0 or self.clip_ms < self.window_ms:
            raise KwspotError("window_ms, hop_ms must be > 0 and clip_ms >= window_ms")
        if self.win_length < 2 or self.hop_length < 1:
            raise KwspotError(f"window {self.window_ms} ms / hop {self.hop_ms} ms is under a "
                              f"sample at {self.sample_rate} Hz")
        if self.n_mels < 1 or (self.kind == "mfcc" and self.n_mfcc < 1):
            raise KwspotError("n_mels and n_mfcc must be at least 1")

    @property
    def win_length(self) -> int:
        return round(self.sample_rate * self.window_ms / 1000)

    @property
    def hop_length(self) -> int:
        return round(self.sample_rate * self.hop_ms / 1000)

    @property
    def n_fft(self) -> int:
        return 1 << math.ceil(math.log2(self.win_length))

    @property
    def clip_samples(self) -> int:
        return round(self.sample_rate * self.clip_ms / 1000)

    @property
    def num_frames(self) -> int:
        return 1 + (self.clip_samples - self.win_length) // self.hop_length

    @property
    def num_channels(self) -> int:
        return self.n_mfcc if self.kind == "mfcc" else self.n_mels


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale (as in TensorFlow's MFCC op used by the TC-ResNet paper)."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(cfg: FeatureConfig) -> np.ndarray:
    """Triangular filters, unnormalised, shape (n_fft // 2 + 1, n_mels)."""
    fft_freqs = np.linspace(0.0, cfg.sample_rate / 2, cfg.n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(cfg.f_min), hz_to_mel(cfg.f_max), cfg.n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (fft_freqs[None] - lower) / (centre - lower)
    falling = (upper - fft_freqs[None]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).T.astype(np.float32)


def dct_matrix(n_input: int, n_output: int) -> np.ndarray:
    """Orthonormal DCT-II, shape (n_input, n_output), so MFCC = log_mel @ matrix."""
    n = np.arange(n_input)[:, None]
    k = np.arange(n_output)[None]
    basis = np.cos(np.pi / n_input * (n + 0.5) * k) * math.sqrt(2.0 / n_input)
    basis[:, 0] /= math.sqrt(2.0)
    return basis.astype(np.float32)


class Frontend(nn.Module):
    """Audio (B, S) -> features (B, C, T); no learned parameters, exportable to ONNX.

    Frames as TensorFlow's MFCC op does (the paper's): ``win_length`` samples every
    ``hop_length``, no centring, Hann window, zero-padded to ``n_fft`` at the end. That is
    ``torch.stft`` with the window padded to ``n_fft`` and the signal padded by the same amount;
    stft is ~3x faster than unfold + rfft inside the training loop and exports to ONNX.
    """

    def __init__(self, cfg: FeatureConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.pad = cfg.n_fft - cfg.win_length
        window = nn.functional.pad(torch.hann_window(cfg.win_length), (0, self.pad))
        self.register_buffer("window", window, persistent=False)
        mel_t = torch.from_numpy(mel_filterbank(cfg).T.copy())  # (n_mels, F)
        self.register_buffer("mel_t", mel_t, persistent=False)
        dct = dct_matrix(cfg.n_mels, cfg.n_mfcc) if cfg.kind == "mfcc" else np.zeros((0, 0))
        self.register_buffer("dct_t", torch.from_numpy(dct.T.astype(np.float32)),
                             persistent=False)  # (n_mfcc, n_mels)

    def power_spectrum(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, S) -> (B, n_fft // 2 + 1, T); 1 s at 16 kHz -> 98 frames."""
        audio = nn.functional.pad(audio.to(self.window.dtype), (0, self.pad))
        spectrum = torch.stft(audio, n_fft=self.cfg.n_fft, hop_length=self.cfg.hop_length,
                              win_length=self.cfg.n_fft, window=self.window, center=False,
                              return_complex=True)
        return spectrum.real.square() + spectrum.imag.square()

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        log_mel = torch.log(torch.matmul(self.mel_t, self.power_spectrum(audio))
                            + self.cfg.log_offset)
        return torch.matmul(self.dct_t, log_mel) if self.cfg.kind == "mfcc" else log_mel
