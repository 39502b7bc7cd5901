"""MFCC and log-mel as one torch module, used in training, evaluation and inside the exported graph.

Shapes: audio (B, S) float32 at ``sample_rate`` -> features (B, C, T), C = coefficients or mel
bins, T = frames. TC-ResNet reads C as channels and convolves over T.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from kwspot.runtime.frontend import (
    FeatureConfig,
    FeatureKind,
    dct_matrix,
    hz_to_mel,
    mel_filterbank,
    mel_to_hz,
)

__all__ = ["FeatureConfig", "FeatureKind", "Frontend", "dct_matrix", "hz_to_mel",
           "mel_filterbank", "mel_to_hz"]

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
