"""The model table: one name -> one builder(in_channels, num_classes, dropout) -> nn.Module."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from kwspot.errors import KwspotError
from kwspot.models import tc_resnet

ModelBuilder = Callable[..., nn.Module]

MODELS: dict[str, ModelBuilder] = {
    "tc-resnet8": tc_resnet.tc_resnet8,
    "tc-resnet8-1.5": tc_resnet.tc_resnet8_15,
    "tc-resnet14": tc_resnet.tc_resnet14,
    "tc-resnet14-1.5": tc_resnet.tc_resnet14_15,
    "tc-resnet8-causal": tc_resnet.tc_resnet8_causal,
    "tc-resnet14-causal": tc_resnet.tc_resnet14_causal,
}


def build_model(name: str, in_channels: int, num_classes: int, dropout: float = 0.5) -> nn.Module:
    try:
        builder = MODELS[name]
    except KeyError:
        raise KwspotError(
            f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}"
        ) from None
    return builder(in_channels, num_classes, dropout=dropout)
