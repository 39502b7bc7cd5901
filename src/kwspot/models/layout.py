"""Temporal (1-D) networks rewritten as (1 x k) 2-D ones for ONNX Runtime: the same weights
and the same arithmetic on (B, C, 1, T) tensors. ONNX Runtime's CPU provider gives 2-D
convolutions its blocked NCHWc kernels, which also take in the residual Add and ReLU, and 1-D
ones generic kernels with the Add and ReLU as separate nodes: TC-ResNet8's network runs ~1.6x
faster this way
(``benchmarks/operator_profile.py``). TFLite needs no rewrite (it has only CONV_2D, and its
converter lowers 1-D convolutions the same way).

Only networks built entirely from the parts below are rewritten (TC-ResNet and its causal and
wider variants); anything else is exported as it is. The export's parity check compares the
rewritten graph with the PyTorch model, so a wrong rewrite cannot be shipped."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from kwspot.models.tc_resnet import CausalConv1d, ResidualBlock, TCResNet

# modules whose forward works unchanged on (B, C, 1, T): containers and element-wise layers
_SHAPE_FREE = (TCResNet, ResidualBlock, nn.Sequential, nn.ReLU, nn.Dropout, nn.Identity,
               nn.Linear)


class TimeConv2d(nn.Conv2d):
    """A Conv1d as a (1 x k) Conv2d; ``left`` zeros before the first frame for a causal one."""

    def __init__(self, conv: nn.Conv1d) -> None:
        causal = isinstance(conv, CausalConv1d)
        super().__init__(conv.in_channels, conv.out_channels, (1, conv.kernel_size[0]),
                         stride=(1, conv.stride[0]),
                         padding=(0, 0 if causal else conv.padding[0]),
                         dilation=(1, conv.dilation[0]), groups=conv.groups,
                         bias=conv.bias is not None)
        self.left = conv.kernel_size[0] - 1 if causal else 0
        with torch.no_grad():
            self.weight.copy_(conv.weight.unsqueeze(2))
            if conv.bias is not None:
                self.bias.copy_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left, 0)) if self.left else x)


class OnePixelHigh(nn.Module):
    """(B, C, T) features in, the rewritten network on (B, C, 1, T), its output out."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x.unsqueeze(2))


def _norm2d(norm: nn.BatchNorm1d) -> nn.BatchNorm2d:
    out = nn.BatchNorm2d(norm.num_features, norm.eps, norm.momentum, norm.affine,
                         norm.track_running_stats)
    out.load_state_dict(norm.state_dict())
    return out


def _rewrite(module: nn.Module) -> bool:
    """Swap the 1-D layers below ``module`` in place; False if a part is not understood."""
    for name, child in module.named_children():
        if isinstance(child, nn.Conv1d) and type(child) in (nn.Conv1d, CausalConv1d) \
                and child.padding_mode == "zeros" and isinstance(child.padding, tuple):
            setattr(module, name, TimeConv2d(child))
        elif type(child) is nn.BatchNorm1d:
            setattr(module, name, _norm2d(child))
        elif type(child) is nn.AdaptiveAvgPool1d and child.output_size in (1, (1,)):
            setattr(module, name, nn.AdaptiveAvgPool2d(1))
        elif isinstance(child, _SHAPE_FREE):
            if not _rewrite(child):
                return False
        else:
            return False
    return True


def temporal_as_2d(network: nn.Module) -> nn.Module | None:
    """An eval-mode copy of ``network`` running on (1 x T) images, or None when it holds parts
    this rewrite does not know (export it as it is then)."""
    if not isinstance(network, TCResNet):
        return None
    copied = copy.deepcopy(network).eval()
    if not _rewrite(copied):
        return None
    return OnePixelHigh(copied).eval()


def for_onnx(network: nn.Module) -> nn.Module:
    """The network as ONNX exports should hold it: rewritten where that is known to help."""
    return temporal_as_2d(network) or network
