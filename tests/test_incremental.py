"""A causal model's export streams incrementally (``<name>.stream.onnx``): the runtime's outputs
equal the full-window causal model's at every hop, for any chunking, from ONNX Runtime."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from kwspot.classifier import KeywordClassifier
from kwspot.errors import KwspotError
from kwspot.export import export_onnx
from kwspot.features import FeatureConfig
from kwspot.models.streaming import StreamingTCResNet
from kwspot.runtime import Detector, OnnxKeywordModel
from kwspot.runtime.detector import DetectorConfig
from kwspot.runtime.engine import StreamScorer
from kwspot.runtime.incremental import priming, stream_graph_path

RATE = 16000
LABELS = ["_silence_", "_unknown_", "yes", "no"]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def causal_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, KeywordClassifier]:
    """An untrained causal TC-ResNet8 with random BN statistics (so BN is not the identity)."""
    torch.manual_seed(0)
    model = KeywordClassifier("tc-resnet8-causal", LABELS, FeatureConfig())
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_var.uniform_(0.5, 2.0)
                m.running_mean.normal_(0.0, 0.3)
                m.bias.normal_(0.0, 0.3)
    model.eval()
    rng = np.random.default_rng(0)
    check = (rng.standard_normal((4, RATE)) * 0.1).astype(np.float32)
    path = tmp_path_factory.mktemp("causal") / "causal.onnx"
    export_onnx(model, path, check)
    return path, model


def speechy(seconds: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    audio = rng.standard_normal(int(seconds * RATE)) * 0.02
    for start in range(RATE // 3, len(audio) - RATE // 2, RATE // 2):
        audio[start : start + RATE // 4] *= 15
    return np.clip(audio, -1, 1).astype(np.float32)


@torch.no_grad()
def reference(model: KeywordClassifier, audio: np.ndarray, prime: int, frames_per_output: int
              ) -> np.ndarray:
    """Posteriors of hop j = the full-window causal model (``window_logits``) over the primed
    stream's frames up to hop j's output frame."""
    padded = np.concatenate([np.zeros(prime, np.float32), audio])
    frames = model.frontend(torch.from_numpy(padded)[None])
    first_frame = 1 + (prime - model.features.win_length) // model.features.hop_length
    ends = range(first_frame + frames_per_output, frames.shape[-1] + 1, frames_per_output)
    logits = torch.cat([model.network.window_logits(frames[..., :end], 98) for end in ends])
    return torch.softmax(logits, dim=-1).numpy()


def test_the_export_carries_an_incremental_graph_and_its_hop(causal_export) -> None:
    path, _ = causal_export
    card = json.loads(path.with_suffix(".json").read_text())
    assert stream_graph_path(path).is_file()
    assert card["stream"]["file"] == "causal.stream.onnx"
    assert card["stream"]["frames_per_output"] == 8
    assert card["stream"]["parity"]["max_abs_diff"] < 1e-5
    assert card["detector"]["hop_ms"] == 80.0
    model = OnnxKeywordModel(path)
    assert model.stream is not None and model.stream.hop_samples == 1280
    assert Detector(model).config.hop_ms == 80.0


def test_priming_covers_a_window_and_the_models_reach(causal_export) -> None:
    samples, outputs = priming(FeatureConfig(), 8)
    assert samples >= RATE
    assert (samples - 480) % (8 * 160) == 0  # its last frame is an output frame
    assert outputs == 1 + (samples - 480) // (8 * 160)
    _, model = causal_export
    reach = StreamingTCResNet(model.network, 98).reach
    assert reach == 12 * 8 + 170  # the pool's 12 earlier positions, the stack's 170 frames
    primed = OnnxKeywordModel(causal_export[0]).stream
    assert primed.prime_outputs * 8 >= reach  # the first kept output: frame 8 * outputs
    # so a longer priming changes nothing any more
    runtime = OnnxKeywordModel(causal_export[0])
    runtime.stream.prime_samples += 8 * 1280
    runtime.stream.prime_outputs += 8
    audio = speechy(2.0)
    longer = StreamScorer(runtime, 1280)
    plain = StreamScorer(OnnxKeywordModel(causal_export[0]), 1280)
    np.testing.assert_allclose(plain.score(plain.take(audio)),
                               longer.score(longer.take(audio)), rtol=0, atol=1e-6)


@pytest.mark.parametrize("chunk", [1, 100, 1279, 1280, 4000, 3 * RATE])
def test_streamed_hops_equal_the_full_window_causal_model(causal_export, chunk: int) -> None:
    path, model = causal_export
    runtime = OnnxKeywordModel(path)
    audio = speechy(3.0)
    want = reference(model, audio, runtime.stream.prime_samples, 8)
    scorer = StreamScorer(runtime, runtime.stream.hop_samples)
    got = np.concatenate([scorer.score(scorer.take(audio[i : i + chunk]))
                          for i in range(0, len(audio), chunk)])
    assert got.shape == want.shape == (len(audio) // 1280, len(LABELS))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_real_history_is_used_not_a_fresh_window(causal_export) -> None:
    """The incremental output is not the clip model on the last second: the causal stack sees
    up to 171 frames of history, as ``window_logits`` defines it."""
    path, model = causal_export
    runtime = OnnxKeywordModel(path)
    audio = speechy(3.0)
    scorer = StreamScorer(runtime, 1280)
    got = scorer.score(scorer.take(audio))
    with torch.no_grad():
        clip = model(torch.from_numpy(audio[None, -RATE:])).softmax(-1).numpy()[0]
    assert np.abs(got[-1] - clip).max() > 1e-3


def test_interleaved_streams_equal_each_stream_alone(causal_export) -> None:
    path, _ = causal_export
    runtime = OnnxKeywordModel(path)
    a, b = speechy(2.0, seed=2), speechy(2.0, seed=3)

    def in_chunks(detector: Detector, x: np.ndarray, i: int) -> np.ndarray:
        return detector.score_track(x[i : i + 320])[1]  # 20 ms

    alone = [np.concatenate([in_chunks(d, x, i) for i in range(0, len(x), 320)])
             for d, x in ((Detector(runtime), a), (Detector(runtime), b))]
    da, db = Detector(runtime), Detector(runtime)
    got: dict[str, list[np.ndarray]] = {"a": [], "b": []}
    for i in range(0, len(a), 320):  # in turn
        got["a"].append(in_chunks(da, a, i))
        got["b"].append(in_chunks(db, b, i))
    np.testing.assert_array_equal(np.concatenate(got["a"]), alone[0])
    np.testing.assert_array_equal(np.concatenate(got["b"]), alone[1])
    da.reset()
    np.testing.assert_array_equal(
        np.concatenate([in_chunks(da, a, i) for i in range(0, len(a), 320)]), alone[0])


def test_streams_scored_together_equal_each_stream_alone(causal_export) -> None:
    """The server's micro-batching: several streams' pending frames in one call (their states
    stacked, those of equal length together) give each stream what it gets alone."""
    path, _ = causal_export
    runtime = OnnxKeywordModel(path)
    clips = [speechy(2.0, seed=s) for s in range(4)]
    alone = []
    for x in clips:
        scorer = StreamScorer(runtime, 1280)
        alone.append(np.concatenate([scorer.score(scorer.take(x[i : i + 320]))
                                     for i in range(0, len(x), 320)]))
    scorers = [StreamScorer(runtime, 1280) for _ in clips]
    got: list[list[np.ndarray]] = [[] for _ in clips]
    sizes = (320, 640, 1280, 2560)  # chunk lengths differ: several graph calls per round
    calls = 0
    for round_ in range(0, 2 * RATE // 320):
        pending, owners = [], []
        for k, (scorer, x) in enumerate(zip(scorers, clips, strict=True)):
            start = round_ * sizes[k]
            if start < len(x):
                taken = scorer.take(x[start : start + sizes[k]])
                if len(taken):
                    pending.append(taken)
                    owners.append(k)
        if pending:
            calls += 1
            for k, out in zip(owners, scorers[0].score(pending), strict=True):
                got[k].append(out)
    assert calls > 0 and all(scorer.samples == 2 * RATE for scorer in scorers)
    for k in range(len(clips)):  # equal up to float rounding: batched GEMMs sum in another
        # order (measured: 6e-8); a mixed-up state or order would differ by far more
        np.testing.assert_allclose(np.concatenate(got[k]), alone[k], rtol=0, atol=1e-6)


def test_a_stream_must_score_what_it_took_before_taking_more(causal_export) -> None:
    path, _ = causal_export
    scorer = StreamScorer(OnnxKeywordModel(path), 1280)
    pending = scorer.take(speechy(0.5))
    assert len(pending) == 6
    with pytest.raises(KwspotError, match="score the windows this stream took"):
        scorer.take(speechy(0.1))
    assert scorer.samples == 8000  # the refused chunk changed nothing
    first = scorer.score(pending)
    with pytest.raises(KwspotError, match="scored already"):
        scorer.score(pending)
    assert first.shape == (6, len(LABELS))
    stale = scorer.take(speechy(0.2))
    scorer.reset()
    with pytest.raises(KwspotError, match="or the stream was reset"):
        scorer.score(stale)


def test_another_hop_is_refused_in_one_line(causal_export) -> None:
    path, _ = causal_export
    with pytest.raises(KwspotError, match="one output every 80 ms"):
        Detector(path, DetectorConfig(hop_ms=100))


def test_a_missing_stream_graph_is_a_clear_error(causal_export, tmp_path: Path) -> None:
    path, _ = causal_export
    for f in path.parent.glob("causal*"):
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "causal.stream.onnx").unlink()
    with pytest.raises(KwspotError, match=r"stream graph causal\.stream\.onnx is missing"):
        OnnxKeywordModel(tmp_path / "causal.onnx")


def test_flush_scores_the_stream_end_like_trailing_silence(causal_export) -> None:
    path, model = causal_export
    runtime = OnnxKeywordModel(path)
    audio = speechy(2.05)
    detector = Detector(runtime, DetectorConfig(smooth_ms=0))
    ends, _ = detector.score_track(audio)
    flush_ends, flushed = detector.flush_track()
    assert flush_ends[-1] == pytest.approx((len(audio) + RATE) // 1280 * 0.08)
    padded = np.concatenate([audio, np.zeros(RATE, np.float32)])
    want = reference(model, padded, runtime.stream.prime_samples, 8)
    np.testing.assert_allclose(flushed, want[len(ends):, 2:], rtol=0, atol=1e-5)


def test_without_its_stream_graph_a_causal_export_scores_windows(causal_export,
                                                                 tmp_path: Path) -> None:
    """``stream_graph=False`` (``--no-stream-graph``); and re-exporting that way removes
    the earlier export's stream graph, which the new card no longer names."""
    _, model = causal_export
    out = tmp_path / "causal.onnx"
    check = (np.random.default_rng(0).standard_normal((2, RATE)) * 0.1).astype(np.float32)
    export_onnx(model, out, check)
    assert stream_graph_path(out).is_file()
    card = export_onnx(model, out, check, stream_graph=False)
    assert "stream" not in card and not stream_graph_path(out).exists()
    runtime = OnnxKeywordModel(out)
    assert runtime.stream is None and Detector(runtime).config.hop_ms == 100.0


def test_a_failed_model_call_leaves_every_stream_as_it_was(causal_export) -> None:
    path, _ = causal_export
    runtime = OnnxKeywordModel(path)
    scorers = [StreamScorer(runtime, 1280) for _ in range(2)]
    pending = [scorers[0].take(speechy(0.16)), scorers[1].take(speechy(0.32))]  # two groups
    before = [[a.copy() for a in s.state] for s in scorers]
    real_run, calls = runtime.stream.run, []

    def second_call_fails(frames, state):
        calls.append(frames.shape)
        if len(calls) == 2:
            raise RuntimeError("the model call failed")
        return real_run(frames, state)

    runtime.stream.run = second_call_fails
    with pytest.raises(RuntimeError, match="failed"):
        scorers[0].score(pending)
    runtime.stream.run = real_run
    # nothing moved on, not even the stream whose group ran before the failure
    for scorer, state in zip(scorers, before, strict=True):
        assert all(np.array_equal(a, b) for a, b in zip(scorer.state, state, strict=True))
    retried = scorers[0].score(pending)  # the group that ran: the same pending work retries
    alone = StreamScorer(runtime, 1280)
    np.testing.assert_allclose(retried[1], alone.score(alone.take(speechy(0.32))), atol=1e-6)


def test_the_micro_batcher_runs_incremental_streams_in_one_call(causal_export) -> None:
    import asyncio

    from kwspot.serving.batching import MicroBatcher

    path, _ = causal_export
    runtime = OnnxKeywordModel(path)
    scorers = [StreamScorer(runtime, 1280) for _ in range(3)]
    clips = [speechy(0.64, seed=s) for s in range(3)]
    calls: list[int] = []

    def score(requests):
        calls.append(len(requests))
        return scorers[0].score(requests)

    async def main() -> list[np.ndarray]:
        batcher = MicroBatcher(score, max_batch=64, max_wait_ms=50)
        await batcher.start()
        try:
            return await asyncio.gather(*(batcher.score(s.take(x))
                                          for s, x in zip(scorers, clips, strict=True)))
        finally:
            await batcher.stop()

    got = asyncio.run(main())
    assert calls == [3]  # three streams, one model call
    for x, out in zip(clips, got, strict=True):
        alone = StreamScorer(runtime, 1280)
        np.testing.assert_allclose(out, alone.score(alone.take(x)), rtol=0, atol=1e-6)
    assert all(s.pending is None for s in scorers)  # every stream's state moved on


def test_the_server_streams_an_incremental_model(causal_export) -> None:
    pytest.importorskip("fastapi", reason="kwspot[serve] is not installed")
    from starlette.testclient import TestClient

    from kwspot.serving import ServeConfig, create_app

    path, _ = causal_export
    audio = speechy(3.0, seed=4)
    detector = Detector(OnnxKeywordModel(path), DetectorConfig(threshold=0.3))
    ends, scores = detector.score_track(audio)
    tail_ends, tail_scores = detector.flush_track()
    with TestClient(create_app(ServeConfig(model=str(path)))) as client:
        for rate in (RATE, 44_100):
            url = f"/v1/stream?sample_rate={rate}&format=float32&scores=1&threshold=0.3"
            sent = audio if rate == RATE else np.interp(
                np.arange(int(len(audio) * rate / RATE)) / rate,
                np.arange(len(audio)) / RATE, audio).astype(np.float32)
            with client.websocket_connect(url) as ws:
                assert ws.receive_json()["hop_s"] == 0.08
                data = sent.astype("<f4").tobytes()
                for i in range(0, len(data), 2560):
                    ws.send_bytes(data[i : i + 2560])
                ws.send_bytes(b"")
                messages = []
                while not messages or messages[-1]["type"] != "end":
                    messages.append(ws.receive_json())
            got_ends = np.concatenate([m["end_s"] for m in messages if m["type"] == "scores"])
            got = np.concatenate([m["scores"] for m in messages if m["type"] == "scores"])
            assert np.allclose(got_ends, np.round(np.concatenate([ends, tail_ends]), 3))
            if rate == RATE:  # the same audio: the offline detector's track
                assert np.allclose(got, np.concatenate([scores, tail_scores]), atol=1e-3)
