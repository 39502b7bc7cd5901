"""Count parameters and FLOPs from the model itself, by tracing one forward pass with hooks."""

from __future__ import annotations

import torch
from torch import nn


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one example, 2 per multiply-add in convolutions and linear layers.

    This is the convention of the TC-ResNet paper's table (TC-ResNet8: 3.0M); BN, ReLU and
    pooling are not counted, as there.
    """
    total = 0

    def conv_hook(module: nn.Conv1d | nn.Conv2d, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        kernel = module.weight[0].numel()  # in_channels/groups * kernel elements
        total += 2 * kernel * out[0].numel()

    def linear_hook(module: nn.Linear, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += 2 * module.in_features * out[0].numel()

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv1d | nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total
