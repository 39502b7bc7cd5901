"""The model table: one name -> one builder(in_channels, num_classes, dropout, frames) ->
nn.Module taking features (B, C, T). ``kwspot.training.recipes`` pairs each name with its published
features and training recipe."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from kwspot.errors import KwspotError
from kwspot.models import bc_resnet, cnn, ds_cnn, res, tc_resnet, tc_resnet_2d

ModelBuilder = Callable[..., nn.Module]

MODELS: dict[str, ModelBuilder] = {
    "tc-resnet8": tc_resnet.tc_resnet8,
    "tc-resnet8-1.5": tc_resnet.tc_resnet8_15,
    "tc-resnet14": tc_resnet.tc_resnet14,
    "tc-resnet14-1.5": tc_resnet.tc_resnet14_15,
    "tc-resnet8-ref": tc_resnet.tc_resnet8_ref,
    "tc-resnet8-causal": tc_resnet.tc_resnet8_causal,
    "tc-resnet14-causal": tc_resnet.tc_resnet14_causal,
    "tc-resnet8-2d": tc_resnet_2d.tc_resnet8_2d,
    "tc-resnet8-2d-pool": tc_resnet_2d.tc_resnet8_2d_pool,
    "cnn-trad-fpool3": cnn.cnn_trad_fpool3,
    "cnn-one-fstride4": cnn.cnn_one_fstride4,
    "ds-cnn-s": ds_cnn.ds_cnn_s,
    "ds-cnn-m": ds_cnn.ds_cnn_m,
    "ds-cnn-l": ds_cnn.ds_cnn_l,
    "res8-narrow": res.res8_narrow,
    "res8": res.res8,
    "res15-narrow": res.res15_narrow,
    "res15": res.res15,
    "bc-resnet-1": bc_resnet.bc_resnet(1),
    "bc-resnet-3": bc_resnet.bc_resnet(3),
    "bc-resnet-8": bc_resnet.bc_resnet(8),
}


def build_model(name: str, in_channels: int, num_classes: int, dropout: float = 0.5,
                frames: int = 98) -> nn.Module:
    try:
        builder = MODELS[name]
    except KeyError:
        raise KwspotError(
            f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}"
        ) from None
    return builder(in_channels, num_classes, dropout=dropout, frames=frames)
