"""The TC-ResNet paper's ablation (Table 2): TC-ResNet8 with 2-D 3x3 convolutions over the
MFCC image instead of temporal convolutions over MFCC channels, and the same with a 4x4
average pool after the first conv. They show why the 1-D design is fast: the 2-D net has the
same parameter budget but ~12x the FLOPs (the pooled one trades accuracy for speed).

As in the reference (``ResNet2D8``), the stem width is chosen so the parameter count stays
close to TC-ResNet8's: int((3*f*c1 + 10*c1*c2) / (9 + 10*c2)) = 23 for 40 MFCCs. Blocks mirror
:class:`kwspot.models.tc_resnet.ResidualBlock` given 2-D convolutions: stride 2 in both
axes.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from kwspot.models.layers import AddChannel, SameConv2d
from kwspot.models.tc_resnet import TC_RESNET8_WIDTHS, ResidualBlock


def _conv2d(in_ch: int, out_ch: int, kernel: int, stride: int) -> nn.Module:
    return SameConv2d(in_ch, out_ch, kernel, stride, bias=False)


class TCResNet2d(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, dropout: float, pool: bool) -> None:
        super().__init__()
        c1, c2 = 16, TC_RESNET8_WIDTHS[0]
        stem = int((3 * in_channels * c1 + 10 * c1 * c2) / (9 + 10 * c2))
        widths = [stem, *TC_RESNET8_WIDTHS]
        self.stem = nn.Sequential(AddChannel(), SameConv2d(1, stem, 3, 1, bias=False),
                                  *([nn.AvgPool2d(4, 4)] if pool else []))
        self.blocks = nn.Sequential(*(ResidualBlock(a, b, 3, conv=_conv2d, norm=nn.BatchNorm2d)
                                      for a, b in itertools.pairwise(widths)))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.classifier(self.dropout(x.mean(dim=(2, 3))))


def tc_resnet8_2d(in_channels: int, num_classes: int, dropout: float = 0.5,
                  frames: int = 98) -> nn.Module:
    return TCResNet2d(in_channels, num_classes, dropout, pool=False)


def tc_resnet8_2d_pool(in_channels: int, num_classes: int, dropout: float = 0.5,
                       frames: int = 98) -> nn.Module:
    return TCResNet2d(in_channels, num_classes, dropout, pool=True)
