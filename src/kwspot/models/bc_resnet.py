"""BC-ResNet (Kim et al., "Broadcasted Residual Learning for Efficient Keyword Spotting",
Interspeech 2021), on 40 log-mel bins.

A block runs a 2-D part on the (frequency, time) map -- a frequency-depthwise 3x1 conv and
SubSpectralNorm -- then averages over frequency and runs a cheap 1-D temporal part (dilated
depthwise 1x3, BN, SiLU, pointwise, channel dropout) whose output is broadcast back over
frequency and added to the 2-D output (and to the block input, except in transition blocks).
Written from the paper's Table 1 and Section 4.1; parameter counts 9.2K / 54K / 321K for
tau = 1 / 3 / 8 (a test holds them).
"""

from __future__ import annotations

import torch
from torch import nn

from kwspot.errors import KwspotError
from kwspot.models.layers import AddChannel

STAGE_BLOCKS = (2, 2, 4, 4)
FREQ_STRIDE = (1, 2, 2, 1)  # per stage: the two middle stages halve the frequency axis
SUB_BANDS = 5


class SubSpectralNorm(nn.Module):
    """BatchNorm with separate statistics and affine per (channel, frequency sub-band)."""

    def __init__(self, channels: int, sub_bands: int = SUB_BANDS) -> None:
        super().__init__()
        self.sub_bands = sub_bands
        self.norm = nn.BatchNorm2d(channels * sub_bands)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, f, t = x.shape
        if f % self.sub_bands:
            raise KwspotError(f"SubSpectralNorm: {f} frequency bins do not split into "
                             f"{self.sub_bands} sub-bands (BC-ResNet needs 40 mel bins)")
        x = self.norm(x.reshape(b, c * self.sub_bands, f // self.sub_bands, t))
        return x.reshape(b, c, f, t)


class BCBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, freq_stride: int, dilation: int,
                 dropout: float) -> None:
        super().__init__()
        self.transition = in_ch != out_ch
        entry: list[nn.Module] = []
        if self.transition:
            entry = [nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU()]
        self.f2 = nn.Sequential(
            *entry,
            nn.Conv2d(out_ch, out_ch, (3, 1), stride=(freq_stride, 1), padding=(1, 0),
                      groups=out_ch, bias=False),
            SubSpectralNorm(out_ch),
        )
        self.f1 = nn.Sequential(
            nn.Conv2d(out_ch, out_ch, (1, 3), padding=(0, dilation), dilation=(1, dilation),
                      groups=out_ch, bias=False),
            nn.BatchNorm2d(out_ch), nn.SiLU(),
            nn.Conv2d(out_ch, out_ch, 1, bias=False),
            nn.Dropout2d(dropout),
        )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        two_d = self.f2(x)
        out = two_d + self.f1(two_d.mean(dim=2, keepdim=True))  # broadcast over frequency
        if not self.transition:
            out = out + x
        return self.relu(out)


class BCResNet(nn.Module):
    def __init__(self, num_classes: int, tau: float, dropout: float = 0.1) -> None:
        super().__init__()
        base = int(8 * tau)
        widths = [2 * base, base, int(1.5 * base), 2 * base, int(2.5 * base), 4 * base]
        self.stem = nn.Sequential(
            AddChannel(),
            nn.Conv2d(1, widths[0], 5, stride=(2, 1), padding=2, bias=False),
            nn.BatchNorm2d(widths[0]), nn.ReLU(),
        )
        blocks: list[nn.Module] = []
        for stage, count in enumerate(STAGE_BLOCKS):
            for i in range(count):
                blocks.append(BCBlock(widths[stage] if i == 0 else widths[stage + 1],
                                      widths[stage + 1], FREQ_STRIDE[stage] if i == 0 else 1,
                                      2**stage, dropout))
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.Conv2d(widths[4], widths[4], 5, padding=(0, 2), groups=widths[4], bias=False),
            nn.Conv2d(widths[4], widths[5], 1, bias=False),
            nn.BatchNorm2d(widths[5]), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(widths[5], num_classes, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x))).flatten(1)


def bc_resnet(tau: float):
    def build(in_channels: int, num_classes: int, dropout: float = 0.1,
              frames: int = 98) -> nn.Module:
        if in_channels != 40:
            raise KwspotError(f"BC-ResNet needs 40 mel bins, got {in_channels}")
        return BCResNet(num_classes, tau, dropout)

    return build
