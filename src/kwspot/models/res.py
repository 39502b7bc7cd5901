"""Res8 / Res15 and their narrow versions (Tang & Lin, ICASSP 2018), as the TC-ResNet paper
trained them (hyperconnect/TC-ResNet ``res.py``): 40 MFCCs x 98 frames, 3x3 convs of 45 (19
narrow) maps, each conv -> ReLU -> BN without scale or shift, a residual every two convs, no
biases. Res8 average-pools 3 freq x 4 time with stride 1 (the TC-ResNet authors' choice; honk
pools with stride = kernel, hence their far larger FLOPs than Tang & Lin's table); Res15
dilates its 13 convs by 2^(i // 3) instead.

Batched; the only Python loop is over the layers; trained channels-last (see
``train_channels_last``). BatchNorm is not folded into a convolution at eval: it follows the
ReLU (the reference's order), and folding it into the next conv is not exact, because that
conv's zero padding would then pad the un-normalized map (and the residual path reads the
normalized one). At eval it is one multiply-add per element, under 1 % of a conv's
arithmetic (171 to 405 multiply-adds per element).
"""

from __future__ import annotations

import torch
from torch import nn

from kwspot.models.layers import AddChannel


class ResNetTangLin(nn.Module):
    # train with channels-last weights (~22 % faster a step for Res8 on one core here); the
    # module itself stays in the default layout: litert-torch converts a channels-last graph
    # wrongly (posteriors off by ~0.1), so exports load it contiguous
    train_channels_last = True
    def __init__(self, num_classes: int, maps: int, layers: int, pool: tuple[int, int] | None,
                 dilate: bool) -> None:
        super().__init__()
        self.stem = nn.Sequential(AddChannel(), nn.Conv2d(1, maps, 3, padding=1, bias=False),
                                  nn.ReLU())
        self.pool = nn.AvgPool2d(pool, stride=1) if pool else nn.Identity()
        rates = [2 ** (i // 3) if dilate else 1 for i in range(layers)]
        self.convs = nn.ModuleList(nn.Conv2d(maps, maps, 3, padding=r, dilation=r, bias=False)
                                   for r in rates)
        self.norms = nn.ModuleList(nn.BatchNorm2d(maps, affine=False) for _ in rates)
        self.relu = nn.ReLU()
        self.classifier = nn.Linear(maps, num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.stem(x))
        block_input = x
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True), 1):
            y = self.relu(conv(x))
            if i % 2 == 0:
                y = y + block_input
            x = norm(y)
            if i % 2 == 0:
                block_input = x
        return self.classifier(x.mean(dim=(2, 3)))


def res8(in_channels: int, num_classes: int, dropout: float = 0.0,
         frames: int = 98) -> nn.Module:
    return ResNetTangLin(num_classes, 45, 6, (3, 4), dilate=False)


def res8_narrow(in_channels: int, num_classes: int, dropout: float = 0.0,
                frames: int = 98) -> nn.Module:
    return ResNetTangLin(num_classes, 19, 6, (3, 4), dilate=False)


def res15(in_channels: int, num_classes: int, dropout: float = 0.0,
          frames: int = 98) -> nn.Module:
    return ResNetTangLin(num_classes, 45, 13, None, dilate=True)


def res15_narrow(in_channels: int, num_classes: int, dropout: float = 0.0,
                 frames: int = 98) -> nn.Module:
    return ResNetTangLin(num_classes, 19, 13, None, dilate=True)
