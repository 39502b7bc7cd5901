"""MFCC and log-mel as one torch module, used in training, evaluation and inside the exported graph.

Shapes: audio (B, S) float32 at ``sample_rate`` -> features (B, C, T), C = coefficients or mel
bins, T = frames. TC-ResNet reads C as channels and convolves over T.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from kwspot.errors import KwspotError
from kwspot.runtime.frontend import (
    FeatureConfig,
    FeatureKind,
    dct_matrix,
    hz_to_mel,
    mel_filterbank,
    mel_to_hz,
)

__all__ = ["ConvFrontend", "FeatureConfig", "FeatureKind", "Frontend", "MatmulFrontend",
           "dct_matrix", "hz_to_mel", "mel_filterbank", "mel_to_hz"]


class Frontend(nn.Module):
    """Audio (B, S) -> features (B, C, T); no learned parameters, exportable to ONNX.

    Frames as the TC-ResNet reference's ``tf.signal.stft`` does: ``win_length`` samples every
    ``hop_length``, no centring, Hann window, zero-padded to ``n_fft`` at the end. That is
    ``torch.stft`` with the window padded to ``n_fft`` and the signal padded by the same amount;
    stft is ~3x faster than unfold + rfft inside the training loop and exports to ONNX.
    The defaults (40 Hz-domain filters over 20-4000 Hz, orthonormal DCT) differ from the
    reference's; ``mel_filters="mel"``, ``dct_norm="tf"`` with 64 filters over 80-7600 Hz
    reproduce it (docs/results.md lists each difference).
    """

    def __init__(self, cfg: FeatureConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.pad = cfg.n_fft - cfg.win_length
        window = nn.functional.pad(torch.hann_window(cfg.win_length), (0, self.pad))
        self.register_buffer("window", window, persistent=False)
        mel_t = torch.from_numpy(mel_filterbank(cfg).T.copy())  # (n_mels, F)
        self.register_buffer("mel_t", mel_t, persistent=False)
        dct = dct_matrix(cfg.n_mels, cfg.n_mfcc, cfg.dct_norm) if cfg.kind == "mfcc" \
            else np.zeros((0, 0))
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


def _grid(cfg: FeatureConfig) -> tuple[int, int]:
    """(n1, n2): the rows and columns of the two-stage FFT's grid (n1 * n2 = n_fft)."""
    n2 = 1 << math.ceil(math.log2(cfg.n_fft) / 2)
    return cfg.n_fft // n2, n2


def _fft_plan(cfg: FeatureConfig) -> tuple[int, int, int, int, np.ndarray, np.ndarray]:
    """What both exported front ends share: (n1, n2, rows that hold samples, the number of
    second-stage bins the mel filters need, the Hann window laid out as (rows, n2), the mel
    filterbank (n_fft // 2 + 1, n_mels))."""
    n1, n2 = _grid(cfg)
    mel = mel_filterbank(cfg)
    top_bin = int(np.nonzero(mel.sum(axis=1))[0].max()) + 1
    rows = -(-cfg.win_length // n2)  # the rest of the grid is zero padding
    window = np.zeros(rows * n2)
    window[: cfg.win_length] = torch.hann_window(cfg.win_length, dtype=torch.float64).numpy()
    return n1, n2, rows, -(-top_bin // n1), window.reshape(rows, n2), mel


def _mel_rows(mel: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """The filterbank's rows for FFT bins in the grid's order; bins past Nyquist weigh 0."""
    return np.where((bins < mel.shape[0])[:, None], mel[np.minimum(bins, len(mel) - 1)], 0)


def _dct_or_identity(cfg: FeatureConfig) -> np.ndarray:
    return dct_matrix(cfg.n_mels, cfg.n_mfcc, cfg.dct_norm) if cfg.kind == "mfcc" \
        else np.eye(cfg.n_mels)


class MatmulFrontend(nn.Module):
    """The same features as :class:`Frontend`, computed with matrix products only, for exported
    graphs. ONNX Runtime's STFT/DFT kernels are slow here (an audio-in graph spent ~1.5 ms of
    its time in them against ~0.07 ms for TC-ResNet8), so the export swaps this in.

    A two-stage Cooley-Tukey FFT written as GEMMs: the ``n_fft`` frame is an ``N1 x N2`` grid;
    stage one is an ``N1``-point DFT down each column of the windowed grid (the Hann window is
    one elementwise product: it varies along both axes, so no one stage matrix can hold it),
    a twiddle, then stage two, an ``N2``-point DFT that yields only the bins the mel filters
    use. Then power, mel, log and DCT, all folded constants. Equal to the training front end
    within 1e-4 (a test); ~40k multiply-adds a frame against ~124k for a direct DFT.
    """

    def __init__(self, cfg: FeatureConfig) -> None:
        super().__init__()
        n_fft, hop = cfg.n_fft, cfg.hop_length
        n1, n2, rows, k2_count, window, mel = _fft_plan(cfg)
        self.cfg, self.n1, self.n2, self.k2_count, self.rows = cfg, n1, n2, k2_count, rows
        self.blocks_per_frame = -(-cfg.win_length // hop)
        self.register_buffer("window", _f32(window), persistent=False)
        angle = -2 * np.pi * np.arange(n1)[:, None] * np.arange(rows)[None] / n1  # (k1, row)
        self.register_buffer("stage1", _f32(np.concatenate([np.cos(angle), np.sin(angle)])),
                             persistent=False)  # (2 * n1, rows): real and imaginary parts
        twiddle = -2 * np.pi * np.arange(n1)[:, None] * np.arange(n2)[None] / n_fft  # (k1, col)
        self.register_buffer("twiddle_cos", _f32(np.cos(twiddle)), persistent=False)
        self.register_buffer("twiddle_sin", _f32(np.sin(twiddle)), persistent=False)
        angle2 = -2 * np.pi * np.arange(n2)[:, None] * np.arange(k2_count)[None] / n2
        cos2, sin2 = np.cos(angle2), np.sin(angle2)
        self.register_buffer("stage2", _f32(np.block([[cos2, sin2], [-sin2, cos2]])),
                             persistent=False)  # (2 * n2, 2 * k2): complex as real blocks
        bins = (np.arange(n1)[:, None] + n1 * np.arange(k2_count)[None]).reshape(-1)  # k1-major
        self.register_buffer("mel", _f32(_mel_rows(mel, bins)),
                             persistent=False)  # (n1 * k2, n_mels)
        self.register_buffer("dct", _f32(_dct_or_identity(cfg)),
                             persistent=False)  # (n_mels, channels)

    def frame_grid(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, S) -> (B, T, rows, n2): each frame's samples laid out as the FFT grid."""
        cfg, batch, frames = self.cfg, audio.shape[0], self.cfg.num_frames
        hop, per = cfg.hop_length, self.blocks_per_frame
        blocks = frames + per - 1
        audio = nn.functional.pad(audio, (0, max(0, blocks * hop - audio.shape[1])))
        audio = audio[:, : blocks * hop].reshape(batch, blocks, hop)
        framed = torch.cat([audio[:, j : j + frames] for j in range(per)], dim=2)
        return framed[:, :, : self.rows * self.n2].reshape(batch, frames, self.rows, self.n2)

    def first_dft(self, grid: torch.Tensor) -> torch.Tensor:
        """Stage one on the windowed grid: (B, T, 2 * n1, n2), real parts then imaginary."""
        return self.stage1 @ (grid * self.window)

    def twiddled(self, stage1: torch.Tensor) -> torch.Tensor:
        real, imag = stage1[:, :, : self.n1], stage1[:, :, self.n1 :]
        return torch.cat([real * self.twiddle_cos - imag * self.twiddle_sin,
                          real * self.twiddle_sin + imag * self.twiddle_cos], dim=3)

    def power(self, turned: torch.Tensor) -> torch.Tensor:
        """Stage two and |X|^2 of the bins the mel filters use: (B, T, n1 * k2)."""
        spectrum = turned @ self.stage2  # (B, T, n1, 2 * k2)
        square = spectrum * spectrum
        power = square[..., : self.k2_count] + square[..., self.k2_count :]
        return power.reshape(power.shape[0], power.shape[1], self.n1 * self.k2_count)

    def mel_log_dct(self, power: torch.Tensor) -> torch.Tensor:
        """(B, T, bins) -> (B, C, T) features."""
        out = torch.log(power @ self.mel + self.cfg.log_offset)
        if self.cfg.kind == "mfcc":
            out = out @ self.dct
        return out.transpose(1, 2)

    # the stages in order; benchmarks/frontend_stages.py times a graph cut after each
    STAGES = ("frame_grid", "first_dft", "twiddled", "power", "mel_log_dct")

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = audio
        for stage in self.STAGES:
            x = getattr(self, stage)(x)
        return x


class ConvFrontend(nn.Module):
    """The same features again, for ONNX Runtime: framing, window, stage one and the twiddle
    of :class:`MatmulFrontend`'s FFT folded into ONE depthwise strided convolution, stage two
    one matrix product, and the output already in the network's (B, C, T) layout. The
    arithmetic is the same; the framing copy, the window and twiddle products and the
    concatenations are gone (about a third faster in ONNX Runtime, no faster in TFLite, so
    TFLite keeps the matmul graph). Needs a hop that is a multiple of the grid's row length
    (``supports``: 10 and 20 ms hops at 16 kHz are).

    With sample n = n2 * r + c of a frame (r < n1 rows, c < n2 columns) and bin
    k = k1 + n1 * k2: X[k] = sum_c exp(-2 pi i k2 c / n2) * Y[c, k1], where
    Y[c, k1] = exp(-2 pi i k1 c / n_fft) * sum_r w[r, c] x[r, c] exp(-2 pi i k1 r / n1): one
    kernel per column c over the rows r, which is a depthwise convolution over the audio laid
    out as (columns, rows) and striding hop / n2 rows per frame.
    """

    def __init__(self, cfg: FeatureConfig) -> None:
        super().__init__()
        if not self.supports(cfg):
            raise KwspotError(f"ConvFrontend needs a hop that is a multiple of "
                              f"{_grid(cfg)[1]} samples (got {cfg.hop_length})")
        n1, n2, rows, k2_count, window, mel = _fft_plan(cfg)
        self.cfg, self.n1, self.n2, self.k2_count, self.rows = cfg, n1, n2, k2_count, rows
        self.stride = cfg.hop_length // n2
        window = window.T[:, None, :]  # (c, 1, r)
        r = np.arange(rows)[None, None, :]
        c = np.arange(n2)[:, None, None]
        k1 = np.arange(n1)[None, :, None]
        angle = 2 * np.pi * k1 * (r / n1 + c / cfg.n_fft)  # stage one and the twiddle: (c, k1, r)
        kernels = np.concatenate([np.cos(angle), -np.sin(angle)], axis=1) * window
        self.register_buffer("kernels", _f32(kernels.reshape(n2 * 2 * n1, 1, rows)),
                             persistent=False)  # per column: real then imaginary of each k1
        phi = 2 * np.pi * np.arange(k2_count)[:, None] * np.arange(n2)[None] / n2  # (k2, c)
        stage2 = np.zeros((2 * k2_count, n2, 2))  # inputs (c, real / imaginary)
        stage2[:k2_count, :, 0], stage2[:k2_count, :, 1] = np.cos(phi), np.sin(phi)
        stage2[k2_count:, :, 0], stage2[k2_count:, :, 1] = -np.sin(phi), np.cos(phi)
        self.register_buffer("stage2", _f32(stage2.reshape(2 * k2_count, 2 * n2)),
                             persistent=False)
        bins = (np.arange(n1)[None, :] + n1 * np.arange(k2_count)[:, None]).reshape(-1)  # k2-major
        self.register_buffer("mel_t", _f32(_mel_rows(mel, bins).T),
                             persistent=False)  # (n_mels, bins)
        self.register_buffer("dct_t", _f32(_dct_or_identity(cfg).T),
                             persistent=False)  # (channels, n_mels)

    @staticmethod
    def supports(cfg: FeatureConfig) -> bool:
        return cfg.hop_length % _grid(cfg)[1] == 0

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        batch, frames = audio.shape[0], self.cfg.num_frames
        need = ((frames - 1) * self.stride + self.rows) * self.n2
        audio = nn.functional.pad(audio, (0, max(0, need - audio.shape[1])))[:, :need]
        columns = audio.reshape(batch, -1, self.n2).transpose(1, 2)  # (B, c, all rows)
        y = nn.functional.conv1d(columns, self.kernels, stride=self.stride, groups=self.n2)
        y = y.reshape(batch, self.n2 * 2, self.n1 * frames)  # (B, (c, re/im), (k1, T))
        spectrum = self.stage2 @ y  # (B, 2 * k2, (k1, T))
        square = spectrum * spectrum
        power = (square[:, : self.k2_count] + square[:, self.k2_count :]).reshape(
            batch, self.k2_count * self.n1, frames)
        out = torch.log(self.mel_t @ power + self.cfg.log_offset)
        return self.dct_t @ out if self.cfg.kind == "mfcc" else out


def _f32(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
