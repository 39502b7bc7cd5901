"""The feature front end without torch: the spec (``FeatureConfig``), the mel filters and DCT,
and a numpy MFCC / log-mel that computes frames incrementally for streams.

Training (``kwspot.features.Frontend``, torch) and the runtime use the same filters and the same
framing, and a test holds them equal. A frame depends only on its own 30 ms of audio, so a
stream computes each frame once, however many 1 s windows it belongs to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.fft

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
    # "hz": triangles linear in Hz between mel-spaced edges (kwspot's default); "mel":
    # triangles linear on the mel scale with the DC bin zeroed, as TensorFlow's
    # linear_to_mel_weight_matrix builds them (the TC-ResNet reference's front end)
    mel_filters: str = "hz"
    # "ortho": orthonormal DCT-II; "tf": sqrt(2/N) on every coefficient, as TensorFlow's
    # mfccs_from_log_mel_spectrograms (c0 differs by sqrt(2))
    dct_norm: str = "ortho"

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
        if self.mel_filters not in ("hz", "mel") or self.dct_norm not in ("ortho", "tf"):
            raise KwspotError(f"mel_filters must be 'hz' or 'mel' and dct_norm 'ortho' or "
                              f"'tf', got {self.mel_filters!r} and {self.dct_norm!r}")

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
    """Triangular filters, unnormalised, shape (n_fft // 2 + 1, n_mels); linear in Hz or, with
    ``mel_filters="mel"``, linear in mel with the DC bin zeroed (TensorFlow's)."""
    fft_freqs = np.linspace(0.0, cfg.sample_rate / 2, cfg.n_fft // 2 + 1)
    edges_mel = np.linspace(hz_to_mel(cfg.f_min), hz_to_mel(cfg.f_max), cfg.n_mels + 2)
    if cfg.mel_filters == "mel":
        axis, edges = hz_to_mel(fft_freqs), edges_mel
    else:
        axis, edges = fft_freqs, mel_to_hz(edges_mel)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (axis[None] - lower) / (centre - lower)
    falling = (upper - axis[None]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling)).T
    if cfg.mel_filters == "mel":
        weights[0] = 0.0
    return weights.astype(np.float32)


def dct_matrix(n_input: int, n_output: int, norm: str = "ortho") -> np.ndarray:
    """DCT-II, shape (n_input, n_output), so MFCC = log_mel @ matrix: orthonormal, or
    (``norm="tf"``) sqrt(2/N) on every coefficient as TensorFlow's MFCC function scales it."""
    n = np.arange(n_input)[:, None]
    k = np.arange(n_output)[None]
    basis = np.cos(np.pi / n_input * (n + 0.5) * k) * math.sqrt(2.0 / n_input)
    if norm == "ortho":
        basis[:, 0] /= math.sqrt(2.0)
    return basis.astype(np.float32)



class FramedFrontend:
    """A stream's frames: ``frames(audio)`` makes (C, T) frames of a whole signal, one per
    ``cfg.hop_length`` samples; ``push`` feeds it a stream in chunks, keeping the samples not
    yet part of a frame. Shared by the numpy MFCC front end and the wake-word embeddings."""

    cfg: Any

    def frames(self, audio: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def reset(self) -> None:
        self.tail = np.zeros(0, np.float32)

    def push(self, samples: np.ndarray) -> np.ndarray:
        """New samples of a stream -> (C, t) frames they complete (t may be 0)."""
        audio = np.concatenate([self.tail, np.asarray(samples, np.float32)])
        out = self.frames(audio)
        self.tail = audio[out.shape[1] * self.cfg.hop_length :]
        return out


class NumpyFrontend(FramedFrontend):
    """Audio -> (C, T) features, equal to the torch ``Frontend`` to float32 rounding.

    ``push(samples)`` returns the frames completed by these samples; state is the last
    ``win_length - hop_length`` samples. ``frames(audio)`` does a whole signal at once.
    """

    def __init__(self, cfg: FeatureConfig) -> None:
        self.cfg = cfg
        n = cfg.win_length
        # torch.hann_window's default: periodic
        self.window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)
        mel = mel_filterbank(cfg)  # (F, n_mels)
        used = np.flatnonzero(mel.any(axis=1))  # only the bins the filters touch
        self.bins = slice(int(used[0]), int(used[-1]) + 1) if len(used) else slice(0, 1)
        self.mel = np.ascontiguousarray(mel[self.bins])
        self.dct = dct_matrix(cfg.n_mels, cfg.n_mfcc, cfg.dct_norm) if cfg.kind == "mfcc" \
            else None
        self.reset()

    @classmethod
    def from_card(cls, features: dict[str, Any]) -> NumpyFrontend:
        return cls(FeatureConfig(**features))

    def frames(self, audio: np.ndarray) -> np.ndarray:
        """(S,) -> (C, T) with T = 1 + (S - win) // hop; no state used or kept."""
        cfg = self.cfg
        audio = np.asarray(audio, np.float32)
        count = 0 if len(audio) < cfg.win_length else 1 + (len(audio) - cfg.win_length) \
            // cfg.hop_length
        if count == 0:
            return np.zeros((self.cfg.num_channels, 0), np.float32)
        view = np.lib.stride_tricks.sliding_window_view(audio, cfg.win_length)[::cfg.hop_length]
        # scipy's FFT keeps float32 (numpy's works in float64): 3.5x faster here
        spectrum = scipy.fft.rfft(view[:count] * self.window, n=cfg.n_fft, axis=1)[:, self.bins]
        power = (spectrum.real ** 2 + spectrum.imag ** 2).astype(np.float32)
        features = np.log(power @ self.mel + np.float32(cfg.log_offset))
        if self.dct is not None:
            features = features @ self.dct
        return np.ascontiguousarray(features.T, dtype=np.float32)

