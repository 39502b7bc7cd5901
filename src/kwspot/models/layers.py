"""Small layers the 2-D baselines share: TensorFlow's "SAME" padding, which the reference
implementations use (it pads the odd element at the end, so symmetric PyTorch padding gives
other output sizes for even kernels and strided convs)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) padding so that the output has ceil(size / stride) positions."""
    span = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding, computed from the input's size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        top, bottom = same_padding(x.shape[-2], kh, sh, dh)
        left, right = same_padding(x.shape[-1], kw, sw, dw)
        return super().forward(F.pad(x, (left, right, top, bottom)))


class AddChannel(nn.Module):
    """(B, F, T) features -> (B, 1, F, T): the 2-D models see the MFCCs as an image."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(1)
