"""Temporal networks exported as (1 x k) 2-D convolutions compute what the 1-D model does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from kwspot.export import export_module
from kwspot.models import build_model
from kwspot.models.layout import for_onnx, temporal_as_2d
from kwspot.runtime.model import onnx_session


def _trained_looking(name: str) -> torch.nn.Module:
    """A network with non-trivial BatchNorm statistics (fresh ones are the identity)."""
    torch.manual_seed(1)
    net = build_model(name, 40, 12)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(16, 40, 98) * 3 + 1)
    return net.eval()


@pytest.mark.parametrize("name", ["tc-resnet8", "tc-resnet14-1.5", "tc-resnet8-causal",
                                  "tc-resnet8-ref"])
def test_the_2d_rewrite_computes_the_same_logits(name: str) -> None:
    net = _trained_looking(name)
    rewritten = temporal_as_2d(net)
    assert rewritten is not None
    x = torch.randn(4, 40, 98)
    with torch.no_grad():
        torch.testing.assert_close(rewritten(x), net(x), atol=1e-5, rtol=0)
    # the original is untouched (a copy was rewritten) and still 1-D
    assert any(isinstance(m, torch.nn.Conv1d) for m in net.modules())
    assert not any(isinstance(m, torch.nn.Conv1d) for m in rewritten.modules())


def test_networks_it_does_not_know_are_exported_as_they_are() -> None:
    ds = build_model("ds-cnn-s", 10, 12).eval()
    assert temporal_as_2d(ds) is None and for_onnx(ds) is ds
    bc = build_model("bc-resnet-1", 40, 12).eval()
    assert for_onnx(bc) is bc


def test_the_onnx_graph_holds_only_2d_convolutions_and_matches_pytorch(tmp_path: Path) -> None:
    net = _trained_looking("tc-resnet8")
    x = torch.randn(2, 40, 98)
    path = tmp_path / "net.onnx"
    export_module(for_onnx(net), x, path, "features", "logits")
    graph = onnx.load(str(path)).graph
    weights = {t.name: len(t.dims) for t in graph.initializer}
    conv_weights = [weights[n.input[1]] for n in graph.node if n.op_type == "Conv"]
    assert conv_weights and set(conv_weights) == {4}
    session = onnx_session(path, 1)
    got = session.run(None, {"features": x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, net(x).numpy(), atol=1e-4, rtol=0)
