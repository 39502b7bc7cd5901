"""CNN-1 and CNN-2 of Sainath & Parada (Interspeech 2015), as the TC-ResNet paper trained them
(hyperconnect/TC-ResNet ``kws.py``: TensorFlow's speech_commands ``trad_fpool3`` and
``one_fstride4``): 40 MFCCs over 40 ms windows every 20 ms (49 frames), no biases, no BN.

Layout here: (B, 1, F, T), kernels written (frequency, time). The fully connected layers
follow the reference: plain matrix products with no non-linearity between them.
"""

from __future__ import annotations

import torch
from torch import nn

from kwspot.errors import KwspotError
from kwspot.models.layers import AddChannel


class CNNTradFPool3(nn.Module):
    """CNN-1: conv 64 (8 freq x 20 time) -> max-pool 3 in frequency -> conv 64 (4 x 10) ->
    linear 32 -> linear 128 -> classes. 524K parameters, 76M FLOPs on 40 x 49."""

    def __init__(self, in_channels: int, num_classes: int, frames: int, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            AddChannel(),
            nn.Conv2d(1, 64, (8, 20), bias=False), nn.ReLU(), nn.Dropout(dropout),
            nn.MaxPool2d((3, 1)),
            nn.Conv2d(64, 64, (4, 10), bias=False), nn.ReLU(), nn.Dropout(dropout),
            nn.Flatten(),
        )
        freq = (in_channels - 7) // 3 - 3
        time = frames - 19 - 9
        if freq < 1 or time < 1:
            raise KwspotError(f"cnn-trad-fpool3 needs at least 20 coefficients and 29 frames, "
                             f"got {in_channels} x {frames}")
        self.classifier = nn.Sequential(
            nn.Linear(64 * freq * time, 32, bias=False),
            nn.Linear(32, 128, bias=False),
            nn.Linear(128, num_classes, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class CNNOneFStride4(nn.Module):
    """CNN-2: one conv of 186 filters spanning all frames x 8 coefficients, stride 4 in
    frequency -> linear 32 -> 128 -> 128 -> classes. 148K parameters, 1.5M FLOPs."""

    def __init__(self, in_channels: int, num_classes: int, frames: int, dropout: float = 0.5):
        super().__init__()
        freq = (in_channels - 8) // 4 + 1
        if freq < 1:
            raise KwspotError(f"cnn-one-fstride4 needs at least 8 coefficients, got {in_channels}")
        self.features = nn.Sequential(
            AddChannel(),
            nn.Conv2d(1, 186, (8, frames), stride=(4, 1), bias=False), nn.ReLU(),
            nn.Dropout(dropout), nn.Flatten(),
        )
        self.classifier = nn.Sequential(
            nn.Linear(186 * freq, 32, bias=False),
            nn.Linear(32, 128, bias=False), nn.Dropout(dropout),
            nn.Linear(128, 128, bias=False), nn.Dropout(dropout),
            nn.Linear(128, num_classes, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def cnn_trad_fpool3(in_channels: int, num_classes: int, dropout: float = 0.5,
                    frames: int = 49) -> nn.Module:
    return CNNTradFPool3(in_channels, num_classes, frames, dropout)


def cnn_one_fstride4(in_channels: int, num_classes: int, dropout: float = 0.5,
                     frames: int = 49) -> nn.Module:
    return CNNOneFStride4(in_channels, num_classes, frames, dropout)
