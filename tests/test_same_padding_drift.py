"""benchmarks/same_padding_drift.py measures streaming drift; its own parts must be exact:
the chunked whole-stream pass equals one pass, a stream one window long equals the window
model, and the lookahead is the receptive field's right half (85 frames for TC-ResNet8)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from kwspot.checkpoint import load_classifier
from kwspot.classifier import KeywordClassifier

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def drift():
    spec = importlib.util.spec_from_file_location(
        "same_padding_drift", ROOT / "benchmarks" / "same_padding_drift.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("causal", [False, True])
def test_chunked_pass_equals_one_pass(drift, causal: bool, monkeypatch) -> None:
    model, _ = load_classifier("shipped")
    if causal:
        causal_model = KeywordClassifier("tc-resnet8-causal", model.labels, model.features)
        causal_model.load_state_dict(model.state_dict())
        model = causal_model.eval()
    monkeypatch.setattr(drift, "CHUNK", 1024)
    frames = np.random.default_rng(0).standard_normal((40, 5000)).astype(np.float32)
    chunked = drift.positions_over_stream(model.network, frames, 8, causal)
    with torch.no_grad():
        whole = drift.trunk(model.network, torch.from_numpy(frames)[None])[0]
    assert chunked.shape == whole.shape
    assert (chunked - whole).abs().max() < 1e-4
    assert drift.lookahead_frames(model.network, 40, 8) == (0 if causal else 85)


def test_a_stream_one_window_long_is_the_window_model(drift) -> None:
    model, _ = load_classifier("shipped")
    window = np.random.default_rng(1).standard_normal((40, 98)).astype(np.float32)
    positions = drift.positions_over_stream(model.network, window, 8, False)
    streamed = drift.head(model.network, positions.mean(-1)[None])
    alone = drift.window_posteriors(model.network, window, np.array([0]), 98)
    np.testing.assert_allclose(streamed, alone, atol=1e-6)
