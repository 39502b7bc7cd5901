"""Training a causal model with history (``--history-ms``): the window the loss sees is the
one a stream scores, the history is what it says, and only causal models may use it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_train_config
from hypothesis import given, settings
from hypothesis import strategies as st

from kwspot.classifier import KeywordClassifier
from kwspot.errors import KwspotError
from kwspot.features import FeatureConfig
from kwspot.models.streaming import StreamingTCResNet
from kwspot.training.augment import AugmentConfig, history_frames, sample_history
from kwspot.training.loop import history_samples, train

LABELS = ["_silence_", "_unknown_", "yes", "no"]


@settings(max_examples=200, deadline=None)
@given(wanted=st.integers(1, 400), window=st.integers(1, 200), stride=st.sampled_from([1, 2,
                                                                                     4, 8, 16]))
def test_history_is_rounded_up_to_end_on_an_output_frame(wanted: int, window: int,
                                                         stride: int) -> None:
    frames = history_frames(wanted, window, stride)
    assert wanted <= frames < wanted + stride
    assert (frames + window - 1) % stride == 0


def test_no_history_is_none() -> None:
    assert history_frames(0, 98, 8) == 0


def test_the_window_trained_on_is_the_one_a_stream_scores_at_the_clip_end() -> None:
    """Features of history + clip through ``window_logits`` (what the loss sees) equal the
    streaming model's output emitted at the clip's last frame: no frame of the clip unseen,
    none of the history counted in the window."""
    torch.manual_seed(0)
    cfg = dataclasses.replace(
        tiny_train_config(Path("unused"), model="tc-resnet8-causal"),
        augment=AugmentConfig(history_ms=950.0))
    model = KeywordClassifier("tc-resnet8-causal", LABELS, FeatureConfig()).eval()
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    samples = history_samples(model, cfg)
    assert samples == 95 * 160  # 950 ms is already 95 frames, and 95 + 98 - 1 = 24 * 8
    audio = torch.randn(2, samples + 16000) * 0.1
    with torch.no_grad():
        features = model.frontend(audio)
        trained = model.network.window_logits(features, model.features.num_frames)
        streamer = StreamingTCResNet(model.network, model.features.num_frames)
        outputs, _ = streamer(features, streamer.init_state(2))
        earlier, _ = streamer(features[..., :-1], streamer.init_state(2))
    assert features.shape[-1] == 95 + 98
    assert outputs.shape[1] == earlier.shape[1] + 1  # an output falls on the clip's last frame
    torch.testing.assert_close(outputs[:, -1], trained, atol=1e-5, rtol=1e-5)
    clip_alone = model.network(model.frontend(audio[:, samples:]))
    assert (clip_alone - trained).abs().max() > 1e-3  # the history does reach the window


def test_history_is_whole_pool_clips_or_silence() -> None:
    pool = torch.arange(1, 7, dtype=torch.float32).repeat_interleave(4).reshape(6, 4)  # rows c
    gen = torch.Generator().manual_seed(0)
    assert torch.count_nonzero(sample_history(pool, 5, 10, 0.0, gen)) == 0
    rows = sample_history(pool, 50, 10, 1.0, gen)
    assert rows.shape == (50, 10)
    # 10 samples of 4-sample clips: the tail of 3 clips, each constant and non-zero
    for row in rows:
        assert row[2:6].unique().numel() == 1 and row[6:].unique().numel() == 1
        assert bool((row > 0).all())
    half = sample_history(pool, 4000, 4, 0.5, gen)
    assert 0.45 < float((half[:, 0] > 0).float().mean()) < 0.55
    assert sample_history(pool, 3, 0, 0.5, gen).shape == (3, 0)


def test_history_is_refused_for_a_model_that_looks_ahead() -> None:
    cfg = dataclasses.replace(tiny_train_config(Path("unused")),
                              augment=AugmentConfig(history_ms=500.0))
    model = KeywordClassifier("tc-resnet8", LABELS, FeatureConfig())
    with pytest.raises(KwspotError, match="--history-ms needs a causal model"):
        history_samples(model, cfg)
    with pytest.raises(KwspotError, match="--history-ms must be 0 or more"):
        AugmentConfig(history_ms=-1.0)


def test_training_with_history_learns_and_repeats(tiny_dataset: Path, tmp_path: Path) -> None:
    cfg = dataclasses.replace(
        tiny_train_config(tiny_dataset, steps=200, model="tc-resnet8-causal"),
        augment=AugmentConfig(history_ms=600.0), threads=1)
    first = train(cfg, tmp_path / "a", quiet=True)
    second = train(cfg, tmp_path / "b", quiet=True)
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    assert saved["augment"]["history_ms"] == 600.0
    # chance is 1/5; validation clips are scored with a fixed history before them
    assert first["val_accuracy"] > 0.6, first
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a), "same seed, history on: other weights"
    assert np.isclose(first["val_accuracy"], second["val_accuracy"])
