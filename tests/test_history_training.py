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
from kwspot.training.augment import (
    AugmentConfig,
    NoiseBank,
    augment_batch,
    history_frames,
    sample_history,
)
from kwspot.training.loop import history_samples, optimizer_for, train, training_step

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


def test_history_goes_before_the_clip_and_the_noise_runs_on_across_both() -> None:
    gen = torch.Generator().manual_seed(0)
    clips, history = torch.rand(3, 50) * 0.5 + 0.2, -torch.rand(3, 30) * 0.5 - 0.2
    ramp = np.arange(1000, dtype=np.float32)  # one recording: a segment of it is a ramp
    bank = NoiseBank([ramp / 1000])
    quiet = AugmentConfig(background_prob=0.0, time_shift_ms=0.0, history_ms=10.0)
    out = augment_batch(clips, torch.zeros(3, dtype=torch.bool), bank, quiet, 16000, gen,
                        history)
    assert torch.equal(out[:, :30], history) and torch.equal(out[:, 30:], clips)
    noisy = dataclasses.replace(quiet, background_prob=1.0, background_volume=1.0)
    out = augment_batch(clips * 0, torch.zeros(3, dtype=torch.bool), bank, noisy, 16000, gen,
                        history * 0)
    steps = out.diff(dim=1)  # one contiguous ramp segment per row, across the boundary
    assert out.shape == (3, 80)
    torch.testing.assert_close(steps, steps[:, :1].expand_as(steps))
    assert bool((steps[:, 0] > 0).all())


def test_a_training_step_with_history_takes_the_loss_on_the_stream_window(
        monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = dataclasses.replace(
        tiny_train_config(Path("unused"), model="tc-resnet8-causal"),
        augment=AugmentConfig(history_ms=950.0))
    model = KeywordClassifier("tc-resnet8-causal", LABELS, FeatureConfig())
    seen: list[tuple[int, int]] = []
    real = model.network.window_logits

    def spy(features: torch.Tensor, window_frames: int) -> torch.Tensor:
        seen.append((features.shape[-1], window_frames))
        return real(features, window_frames)

    monkeypatch.setattr(model.network, "window_logits", spy)
    gen = torch.Generator().manual_seed(0)
    samples = history_samples(model, cfg)
    audio, silence = torch.randn(4, 16000) * 0.1, torch.zeros(4, dtype=torch.bool)
    past = sample_history(audio, 4, samples, 0.5, gen)
    training_step(model, optimizer_for(model, cfg), audio, silence, torch.tensor([0, 1, 2, 3]),
                  NoiseBank.synthetic(), cfg, gen, past)
    assert seen == [(95 + 98, 98)]
    training_step(model, optimizer_for(model, cfg), audio, silence, torch.tensor([0, 1, 2, 3]),
                  NoiseBank.synthetic(), cfg, gen)
    assert len(seen) == 1  # clips alone: the plain forward


def test_training_with_history_learns_and_resumes_exactly(
        tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import signal

    import kwspot.training.loop as loop

    cfg = dataclasses.replace(
        tiny_train_config(tiny_dataset, steps=200, model="tc-resnet8-causal"),
        augment=AugmentConfig(history_ms=600.0), threads=1)
    first = train(cfg, tmp_path / "a", quiet=True)
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    assert saved["augment"]["history_ms"] == 600.0
    assert "history" in first["val_accuracy_mode"] and "zero" in first["test_accuracy_mode"]
    # chance is 1/5; validation clips are scored with a fixed history before them
    assert first["val_accuracy"] > 0.6, first

    # a second run, interrupted (SIGINT) in step 130 and resumed, ends on the same weights
    real_augment, calls = loop.augment_batch, {"n": 0}

    def augment_then_interrupt(*args: object, **kwargs: object) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 130:
            os.kill(os.getpid(), signal.SIGINT)
        return real_augment(*args, **kwargs)

    monkeypatch.setattr(loop, "augment_batch", augment_then_interrupt)
    with pytest.raises(KwspotError, match="interrupted at step 130"):
        train(cfg, tmp_path / "b", quiet=True)
    monkeypatch.setattr(loop, "augment_batch", real_augment)
    second = train(None, tmp_path / "b", resume=True, quiet=True)
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a), "history run resumed to other weights"
    assert np.isclose(first["val_accuracy"], second["val_accuracy"])


def test_an_export_without_the_stream_graph_warns_for_a_history_model() -> None:
    import argparse
    import warnings

    from kwspot.cli.export import warn_if_history_is_lost

    record = {"config": {"augment": {"history_ms": 950.0}}}
    for fmt, precision, no_graph in (("tflite", "float32", False), ("onnx", "int8", False),
                                     ("onnx", "float32", True)):
        args = argparse.Namespace(format=fmt, precision=precision, no_stream_graph=no_graph)
        with pytest.warns(UserWarning, match="zero-history windows"):
            warn_if_history_is_lost(record, args)
    quiet = argparse.Namespace(format="onnx", precision="float32", no_stream_graph=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_history_is_lost(record, quiet)
        warn_if_history_is_lost({"config": {"augment": {"history_ms": 0.0}}},
                                argparse.Namespace(format="tflite", precision="int8",
                                                   no_stream_graph=True))
