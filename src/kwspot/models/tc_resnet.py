"""TC-ResNet (Choi et al., Interspeech 2019): MFCCs as channels, 1-D temporal convolutions.

Layout per the paper: a 3x1 conv to 16k channels, then residual blocks of two 9x1 convs; a block
that widens uses stride 2 and a 1x1 conv (+BN+ReLU) shortcut. Average pool, dropout, linear.

``time_padding="causal"`` pads every conv on the left only, so the stack never looks ahead and can
run incrementally on a stream (``kwspot.models.streaming``) with the same weights.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from kwspot.errors import KwspotError

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
    time_padding: str = "same"  # "same" (centred, the paper) or "causal" (left only, streamable)
    # the authors' code (hyperconnect/TC-ResNet): BN + ReLU after the stem conv, and a
    # classifier without bias; kwspot's default has neither, ``tc-resnet8-ref`` has both
    stem_norm: bool = False
    classifier_bias: bool = True

    def __post_init__(self) -> None:
        if self.time_padding not in ("same", "causal"):
            raise KwspotError(
                f"unknown time_padding {self.time_padding!r}; choose 'same' or 'causal'"
            )


class CausalConv1d(nn.Conv1d):
    """Conv1d with kernel-1 zeros on the left only: output j sees inputs stride*j-(k-1)..stride*j.

    A subclass rather than pad + conv so the weights keep the plain Conv1d names and shapes.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.kernel_size[0] - 1, 0)))


def temporal_conv(in_ch: int, out_ch: int, kernel: int, stride: int, causal: bool) -> nn.Conv1d:
    if causal:
        return CausalConv1d(in_ch, out_ch, kernel, stride=stride, bias=False)
    return nn.Conv1d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False)


ConvFactory = Callable[[int, int, int, int], nn.Module]  # (in, out, kernel, stride) -> conv


class ResidualBlock(nn.Module):
    """Two convs with BN (ReLU between and after the sum); a widening block strides 2 and
    its shortcut is a 1x1 conv + BN + ReLU. ``conv`` builds the convolutions (default: the
    temporal 1-D ones, causal or centred); the 2-D ablation passes 2-D ones and BatchNorm2d."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, causal: bool = False,
                 conv: ConvFactory | None = None,
                 norm: Callable[[int], nn.Module] = nn.BatchNorm1d) -> None:
        super().__init__()
        if conv is None:
            conv = functools.partial(temporal_conv, causal=causal)
        stride = 1 if in_ch == out_ch else 2
        self.stride = stride
        self.conv1 = conv(in_ch, out_ch, kernel, stride)
        self.bn1 = norm(out_ch)
        self.conv2 = conv(out_ch, out_ch, kernel, 1)
        self.bn2 = norm(out_ch)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1:
            self.shortcut = nn.Sequential(conv(in_ch, out_ch, 1, stride), norm(out_ch), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.shortcut(x))


class TCResNet(nn.Module):
    """Features (B, C, T) -> logits (B, num_classes).

    Causal model contract (``time_padding="causal"``): the logits of a 1-s window are
    linear(dropout(mean of the last-layer vectors at the window's positions)). Last-layer position
    j sees input frames up to ``total_stride * j`` and nothing later. In training a clip sees zero
    history: every conv's left padding is zeros (the state of a stream at reset, which is NOT the
    same as zero feature frames, since BN shifts make those non-zero deeper in). At deployment the
    full-window model is the same stack run over the window with its real left history
    (receptive field 171 frames for TC-ResNet8), keeping only the window's last-layer positions:
    ``window_logits``, which ``StreamingTCResNet`` reproduces incrementally. On a 98-frame clip
    the positions are frames 0, 8, .., 96; frame 97 is never read.
    """

    def __init__(self, in_channels: int, num_classes: int, cfg: TCResNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        causal = cfg.time_padding == "causal"
        k = cfg.width_multiplier
        widths = [int(w * k) for w in (cfg.stem_width, *cfg.block_widths)]
        self.stem: nn.Module = temporal_conv(in_channels, widths[0], cfg.stem_kernel, 1, causal)
        if cfg.stem_norm:
            self.stem = nn.Sequential(self.stem, nn.BatchNorm1d(widths[0]), nn.ReLU())
        self.blocks = nn.Sequential(
            *(ResidualBlock(a, b, cfg.block_kernel, causal) for a, b in itertools.pairwise(widths))
        )
        self.total_stride = math.prod(block.stride for block in self.blocks)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(widths[-1], num_classes, bias=cfg.classifier_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.classifier(self.dropout(self.pool(x).flatten(1)))

    def window_logits(self, features: torch.Tensor, window_frames: int) -> torch.Tensor:
        """Non-streaming reference of a causal model: (B, C, T) frames with history -> logits.

        Runs the stack over all T frames (zero conv padding before frame 0, as at stream reset)
        and averages the last ceil(window_frames / total_stride) last-layer positions, or all of
        them when fewer exist. The window starts on a multiple of the total stride, counted from
        frame 0. With no history (T = window_frames) this is ``forward``.
        """
        if self.cfg.time_padding != "causal":
            raise KwspotError("window_logits needs a causal model (time_padding='causal')")
        x = self.blocks(self.stem(features))
        positions = -(-window_frames // self.total_stride)
        return self.classifier(self.dropout(x[..., -positions:].mean(dim=-1)))


def tc_resnet8(in_channels: int, num_classes: int, dropout: float = 0.5,
                frames: int = 98) -> TCResNet:
    return TCResNet(in_channels, num_classes, TCResNetConfig(dropout=dropout))


def tc_resnet8_15(in_channels: int, num_classes: int, dropout: float = 0.5,
                frames: int = 98) -> TCResNet:
    return TCResNet(in_channels, num_classes, TCResNetConfig(width_multiplier=1.5, dropout=dropout))


def tc_resnet14(in_channels: int, num_classes: int, dropout: float = 0.5,
                frames: int = 98) -> TCResNet:
    cfg = TCResNetConfig(block_widths=TC_RESNET14_WIDTHS, dropout=dropout)
    return TCResNet(in_channels, num_classes, cfg)


def tc_resnet14_15(in_channels: int, num_classes: int, dropout: float = 0.5,
                frames: int = 98) -> TCResNet:
    cfg = TCResNetConfig(block_widths=TC_RESNET14_WIDTHS, width_multiplier=1.5, dropout=dropout)
    return TCResNet(in_channels, num_classes, cfg)


def tc_resnet8_causal(in_channels: int, num_classes: int, dropout: float = 0.5,
                frames: int = 98) -> TCResNet:
    cfg = TCResNetConfig(dropout=dropout, time_padding="causal")
    return TCResNet(in_channels, num_classes, cfg)


def tc_resnet14_causal(in_channels: int, num_classes: int, dropout: float = 0.5,
                frames: int = 98) -> TCResNet:
    cfg = TCResNetConfig(block_widths=TC_RESNET14_WIDTHS, dropout=dropout, time_padding="causal")
    return TCResNet(in_channels, num_classes, cfg)


def tc_resnet8_ref(in_channels: int, num_classes: int, dropout: float = 0.5,
                   frames: int = 98) -> TCResNet:
    """TC-ResNet8 as the authors' code builds it (stem BN + ReLU, no classifier bias)."""
    cfg = TCResNetConfig(dropout=dropout, stem_norm=True, classifier_bias=False)
    return TCResNet(in_channels, num_classes, cfg)
