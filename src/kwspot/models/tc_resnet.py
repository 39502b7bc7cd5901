"""TC-ResNet (Choi et al., Interspeech 2019): MFCCs as channels, 1-D temporal convolutions.

Layout per the paper: a 3x1 conv to 16k channels, then residual blocks of two 9x1 convs; a block
that widens uses stride 2 and a 1x1 conv (+BN+ReLU) shortcut. Average pool, dropout, linear.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import nn

# Channel widths of the residual blocks before the width multiplier k.
TC_RESNET8_WIDTHS = (24, 32, 48)
TC_RESNET14_WIDTHS = (24, 24, 32, 32, 48, 48)


@dataclass(frozen=True)
class TCResNetConfig:
    stem_width: int = 16
    block_widths: tuple[int, ...] = TC_RESNET8_WIDTHS
    width_multiplier: float = 1.0
    stem_kernel: int = 3
    block_kernel: int = 9
    dropout: float = 0.5


class ResidualBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel: int) -> None:
        super().__init__()
        stride = 1 if in_ch == out_ch else 2
        pad = kernel // 2
        self.conv1 = nn.Conv1d(in_ch, out_ch, kernel, stride=stride, padding=pad, bias=False)
        self.bn1 = nn.BatchNorm1d(out_ch)
        self.conv2 = nn.Conv1d(out_ch, out_ch, kernel, padding=pad, bias=False)
        self.bn2 = nn.BatchNorm1d(out_ch)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1:
            self.shortcut = nn.Sequential(
                nn.Conv1d(in_ch, out_ch, 1, stride=stride, bias=False),
                nn.BatchNorm1d(out_ch),
                nn.ReLU(),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.shortcut(x))


class TCResNet(nn.Module):
    """Features (B, C, T) -> logits (B, num_classes)."""

    def __init__(self, in_channels: int, num_classes: int, cfg: TCResNetConfig) -> None:
        super().__init__()
        k = cfg.width_multiplier
        widths = [int(w * k) for w in (cfg.stem_width, *cfg.block_widths)]
        self.stem = nn.Conv1d(
            in_channels, widths[0], cfg.stem_kernel, padding=cfg.stem_kernel // 2, bias=False
        )
        self.blocks = nn.Sequential(
            *(ResidualBlock(a, b, cfg.block_kernel) for a, b in itertools.pairwise(widths))
        )
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.classifier(self.dropout(self.pool(x).flatten(1)))


def tc_resnet8(in_channels: int, num_classes: int, dropout: float = 0.5) -> TCResNet:
    return TCResNet(in_channels, num_classes, TCResNetConfig(dropout=dropout))


def tc_resnet8_15(in_channels: int, num_classes: int, dropout: float = 0.5) -> TCResNet:
    return TCResNet(in_channels, num_classes, TCResNetConfig(width_multiplier=1.5, dropout=dropout))


def tc_resnet14(in_channels: int, num_classes: int, dropout: float = 0.5) -> TCResNet:
    cfg = TCResNetConfig(block_widths=TC_RESNET14_WIDTHS, dropout=dropout)
    return TCResNet(in_channels, num_classes, cfg)


def tc_resnet14_15(in_channels: int, num_classes: int, dropout: float = 0.5) -> TCResNet:
    cfg = TCResNetConfig(block_widths=TC_RESNET14_WIDTHS, width_multiplier=1.5, dropout=dropout)
    return TCResNet(in_channels, num_classes, cfg)
