"""DS-CNN-S/M/L of Zhang et al., "Hello Edge" (2017), as the TC-ResNet paper trained them:
10 MFCCs over 40 ms windows every 20 ms; a conv (10 time x 4 freq), then depthwise-separable
blocks (3x3 depthwise, 1x1 pointwise, each with BN and ReLU), average pooling and a linear
classifier. Every conv has a bias, as in the reference; "SAME" padding."""

from __future__ import annotations

import torch
from torch import nn

from kwspot.models.layers import AddChannel, SameConv2d


def _bn_relu(channels: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(channels), nn.ReLU()]


class DSCNN(nn.Module):
    """``blocks``: one (stride_freq, stride_time) per separable block."""

    def __init__(self, num_classes: int, width: int, first_stride: tuple[int, int],
                 blocks: list[tuple[int, int]]) -> None:
        super().__init__()
        layers: list[nn.Module] = [AddChannel(), SameConv2d(1, width, (4, 10), first_stride),
                                   *_bn_relu(width)]
        for stride in blocks:
            layers += [SameConv2d(width, width, 3, stride, groups=width), *_bn_relu(width),
                       nn.Conv2d(width, width, 1), *_bn_relu(width)]
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def ds_cnn_s(in_channels: int, num_classes: int, dropout: float = 0.0,
             frames: int = 49) -> nn.Module:
    return DSCNN(num_classes, 64, (2, 2), [(1, 1)] * 4)


def ds_cnn_m(in_channels: int, num_classes: int, dropout: float = 0.0,
             frames: int = 49) -> nn.Module:
    return DSCNN(num_classes, 172, (1, 2), [(2, 2)] + [(1, 1)] * 3)


def ds_cnn_l(in_channels: int, num_classes: int, dropout: float = 0.0,
             frames: int = 49) -> nn.Module:
    return DSCNN(num_classes, 276, (1, 2), [(2, 2)] + [(1, 1)] * 4)
