"""The server (``kwspot serve``): every endpoint against the library it wraps, each limit and
bad input, per-connection state, micro-batching, and the API key rule. Runs the app in-process
(Starlette's TestClient); ``test_serve_process.py`` runs the real uvicorn server."""

from __future__ import annotations

import asyncio
import io
import json

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi", reason="kwspot[serve] is not installed")

from starlette.testclient import (
    TestClient,
    WebSocketDenialResponse,
)
from starlette.websockets import WebSocketDisconnect

from kwspot.errors import KwspotError
from kwspot.runtime.detector import Detector, DetectorConfig, detect_audio
from kwspot.runtime.model import OnnxKeywordModel
from kwspot.serving import ServeConfig, create_app
from kwspot.serving.batching import MicroBatcher

RATE = 16000
KEY = "k" * 24


def speechy_audio(seconds: float = 4.0, seed: int = 0) -> np.ndarray:
    """Speech-like bursts (noise shaped by a slow envelope) over a quiet floor: the model's
    scores move, so a stream that mixed up state with another would show it."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    envelope = np.clip(np.sin(2 * np.pi * rng.uniform(0.4, 1.2) * t), 0, None) ** 2
    voiced = np.sin(2 * np.pi * rng.uniform(150, 300) * t * (1 + 0.1 * np.sin(3 * t)))
    audio = 0.3 * envelope * (voiced + 0.3 * rng.standard_normal(n)) + \
        0.003 * rng.standard_normal(n)
    return np.clip(audio, -1, 1).astype(np.float32)


def wav_bytes(audio: np.ndarray, rate: int = RATE, fmt: str = "WAV",
              subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def pcm16(audio: np.ndarray) -> bytes:
    return np.round(np.clip(audio, -1, 1 - 1 / 32768) * 32768).astype("<i2").tobytes()


def offline_track(audio: np.ndarray, cfg: DetectorConfig | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The score track ``kwspot detect`` computes for the same audio (flush included)."""
    detector = Detector(OnnxKeywordModel(), cfg)
    ends, scores = detector.score_track(audio)
    tail_ends, tail_scores = detector.flush_track()
    return np.concatenate([ends, tail_ends]), np.concatenate([scores, tail_scores])


@pytest.fixture
def client():
    with TestClient(create_app(ServeConfig())) as c:
        yield c


def stream(ws, data: bytes, frame_bytes: int) -> list[dict]:
    """Send ``data`` in frames of ``frame_bytes``, end the stream, collect every message."""
    for i in range(0, len(data), frame_bytes):
        ws.send_bytes(data[i : i + frame_bytes])
    ws.send_bytes(b"")
    messages = []
    while True:
        msg = ws.receive_json()
        messages.append(msg)
        if msg["type"] == "end":
            return messages


def scores_of(messages: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    rows = [m for m in messages if m["type"] == "scores"]
    return (np.array([t for m in rows for t in m["end_s"]]),
            np.array([s for m in rows for s in m["scores"]]))


def metric(text: str, name: str) -> float:
    """One sample's value from Prometheus text."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in metrics")


# --- HTTP ----------------------------------------------------------------------------------------

def test_healthz_and_demo_page(client: TestClient) -> None:
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["sample_rate"] == RATE
    assert health["labels"] == OnnxKeywordModel().labels
    page = client.get("/")
    assert page.status_code == 200 and "getUserMedia" in client.get("/static/demo.js").text
    assert "AudioWorkletProcessor" in client.get("/static/capture-worklet.js").text
    for path in ("/static/%2e%2e/app.py", "/static/..%2fapp.py",
                 "/static/%2e%2e/%2e%2e/classifier.py"):
        response = client.get(path)
        assert response.status_code == 404 and "import" not in response.text


def test_fastapis_own_errors_are_one_line_json_too(client: TestClient) -> None:
    missing = client.get("/v1/nothing")
    assert missing.status_code == 404 and missing.json() == {"error": "Not Found"}
    wrong_method = client.get("/v1/detect")
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()


def test_detect_equals_the_library_for_raw_and_multipart_uploads(client: TestClient) -> None:
    audio = speechy_audio(6.0, seed=3)
    cfg = DetectorConfig(threshold=0.3)
    expected = detect_audio(audio, None, cfg)
    data = wav_bytes(audio, subtype="FLOAT")
    raw = client.post("/v1/detect?threshold=0.3", content=data)
    form = client.post("/v1/detect?threshold=0.3", files={"file": ("a.wav", data)})
    for response in (raw, form):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["duration_s"] == 6.0
        got = [(d["keyword"], d["end_s"]) for d in body["detections"]]
        assert got == [(e.keyword, round(e.end_s, 3)) for e in expected]


def test_detect_reads_stereo_flac_at_another_rate(client: TestClient) -> None:
    audio = speechy_audio(2.0)
    stereo = np.stack([audio, audio], axis=1)
    from kwspot.audio import resample

    data = wav_bytes(resample(stereo, RATE, 44100), 44100, fmt="FLAC")
    response = client.post("/v1/detect", content=data)
    assert response.status_code == 200 and response.json()["duration_s"] == pytest.approx(2.0)


def test_classify_gives_the_models_posteriors(client: TestClient) -> None:
    audio = speechy_audio(1.0, seed=5)
    response = client.post("/v1/classify", content=wav_bytes(audio, subtype="FLOAT"))
    assert response.status_code == 200
    body = response.json()
    model = OnnxKeywordModel()
    expected = model.posteriors(audio[None])[0]
    assert list(body["posteriors"]) == model.labels
    assert np.allclose(list(body["posteriors"].values()), expected, atol=1e-4)
    assert body["label"] == model.labels[int(np.argmax(expected))]


@pytest.mark.parametrize(("route", "body", "status", "words"), [
    ("/v1/detect", b"this is not audio", 415, "decod"),
    ("/v1/detect", b"", 400, "empty upload"),
    ("/v1/detect?threshold=abc", b"x", 400, "threshold must be a number"),
    ("/v1/detect?threshold=7", b"x", 400, "threshold must be in (0, 1]"),
    ("/v1/detect?keywords=banana", b"x", 400, "cannot spot ['banana']"),
    ("/v1/classify", b"RIFF\x00\x00", 415, "upload"),
])
def test_bad_requests_get_one_line_json(client: TestClient, route: str, body: bytes,
                                        status: int, words: str) -> None:
    response = client.post(route, content=body)
    assert response.status_code == status
    message = response.json()["error"]
    assert words in message and "\n" not in message and "BytesIO" not in message


def test_classify_of_audio_that_resamples_to_nothing(client: TestClient) -> None:
    response = client.post("/v1/classify", content=wav_bytes(np.array([0.5]), 48000))
    assert response.status_code == 415 and "too short" in response.json()["error"]


def test_upload_queue_is_bounded() -> None:
    from kwspot.serving.app import RequestError, Service

    service = Service(ServeConfig(max_pending_uploads=2, retry_after_s=3))

    async def main() -> None:
        async with service.upload_slot(), service.upload_slot():
            with pytest.raises(RequestError) as busy:
                async with service.upload_slot():
                    pass
            assert busy.value.status == 503 and busy.value.headers == {"Retry-After": "3"}
        async with service.upload_slot():  # freed again
            assert service.pending_uploads == 1
        assert service.pending_uploads == 0

    asyncio.run(main())


def test_multipart_without_a_file_field(client: TestClient) -> None:
    response = client.post("/v1/detect", files={"audio": ("a.wav", b"RIFF")})
    assert response.status_code == 400 and "'file'" in response.json()["error"]


def test_upload_size_and_duration_limits() -> None:
    config = ServeConfig(max_upload_mb=0.05, max_upload_s=2.0)
    with TestClient(create_app(config)) as client:
        big = client.post("/v1/detect", content=b"\0" * 60_000)
        assert big.status_code == 413 and "over the limit" in big.json()["error"]
        # 3 s of 8-bit FLAC silence packs far under 0.05 MB, but decodes past 2 s
        long = wav_bytes(np.zeros(3 * RATE), fmt="FLAC", subtype="PCM_16")
        assert len(long) < 50_000
        response = client.post("/v1/detect", content=long)
        assert response.status_code == 413 and "more than 2 s" in response.json()["error"]
        clip = client.post("/v1/classify", content=wav_bytes(np.zeros(RATE)))
        assert clip.status_code == 200
    with TestClient(create_app(ServeConfig())) as client:
        response = client.post("/v1/classify", content=wav_bytes(np.zeros(31 * RATE),
                                                                 fmt="FLAC"))
        assert response.status_code == 413 and "30 s" in response.json()["error"]


def test_metrics_count_requests_streams_and_batches(client: TestClient) -> None:
    client.post("/v1/detect", content=wav_bytes(speechy_audio(1.0)))
    client.post("/v1/detect", content=b"bad")
    with client.websocket_connect("/v1/stream") as ws:
        ws.receive_json()
        stream(ws, pcm16(speechy_audio(1.0)), 3200)
    text = client.get("/metrics").text
    assert 'kwspot_requests_total{route="/v1/detect",status="200"} 1.0' in text
    assert 'kwspot_requests_total{route="/v1/detect",status="415"} 1.0' in text
    assert 'kwspot_streams_total{outcome="completed"} 1.0' in text
    assert "kwspot_active_streams 0.0" in text
    calls, windows = metric(text, "kwspot_model_calls_total"), \
        metric(text, "kwspot_batch_windows_sum")
    assert calls >= 1 and windows == 20  # 1 s of audio + the 1 s flush, at a 100 ms hop
    assert "kwspot_event_latency_seconds_bucket" in text


# --- WebSocket -----------------------------------------------------------------------------------

def test_stream_equals_the_offline_detector_for_any_frame_size(client: TestClient) -> None:
    audio = speechy_audio(5.0, seed=1)
    ends, scores = offline_track(audio, DetectorConfig(threshold=0.3))
    events = detect_audio(audio, None, DetectorConfig(threshold=0.3))
    for frame in (777, 3200, 48_001):  # odd sizes split int16 samples across frames
        url = "/v1/stream?sample_rate=16000&format=int16&scores=1&threshold=0.3"
        with client.websocket_connect(url) as ws:
            ready = ws.receive_json()
            assert ready["type"] == "ready" and ready["hop_s"] == 0.1
            messages = stream(ws, pcm16(audio), frame)
        got_ends, got_scores = scores_of(messages)
        assert np.allclose(got_ends, np.round(ends, 3))
        assert np.allclose(got_scores, scores, atol=2e-3)  # int16 quantization of the audio
        detections = [(m["keyword"], m["end_s"]) for m in messages if m["type"] == "detection"]
        assert detections == [(e.keyword, round(e.end_s, 3)) for e in events]
        assert messages[-1] == {"type": "end", "audio_s": 5.0}


def test_float32_at_another_rate_is_resampled(client: TestClient) -> None:
    from kwspot.audio import resample

    audio = speechy_audio(3.0, seed=2)
    at_44k = resample(audio, RATE, 44100)
    with client.websocket_connect("/v1/stream?sample_rate=44100&format=float32&scores=1") as ws:
        ready = ws.receive_json()
        assert ready["input"] == {"sample_rate": 44100, "format": "float32"}
        messages = stream(ws, at_44k.astype("<f4").tobytes(), 4410 * 4 + 2)
    _, got = scores_of(messages)
    _ends, expected = offline_track(audio)
    assert len(got) == len(expected)
    # a round trip through two resamplers changes the audio slightly, not the scores' shape
    assert np.abs(got - expected).max() < 0.05


def test_two_interleaved_streams_keep_their_own_state(client: TestClient) -> None:
    audios = [speechy_audio(4.0, seed=10), speechy_audio(4.0, seed=11)]
    url = "/v1/stream?scores=1&threshold=0.3"
    with client.websocket_connect(url) as a, client.websocket_connect(url) as b:
        sockets = [a, b]
        for ws in sockets:
            ws.receive_json()
        data = [pcm16(x) for x in audios]
        step = 2400  # 75 ms frames, alternating between the two connections
        for i in range(0, len(data[0]), step):
            for ws, d in zip(sockets, data, strict=True):
                ws.send_bytes(d[i : i + step])
        results = []
        for ws in sockets:
            ws.send_bytes(b"")
            messages = []
            while not messages or messages[-1]["type"] != "end":
                messages.append(ws.receive_json())
            results.append(messages)
    for audio, messages in zip(audios, results, strict=True):
        _, expected = offline_track(audio, DetectorConfig(threshold=0.3))
        _, got = scores_of(messages)
        assert np.allclose(got, expected, atol=2e-3)
    assert not np.allclose(scores_of(results[0])[1], scores_of(results[1])[1], atol=2e-3)


def test_loud_audio_at_another_rate_is_not_refused(client: TestClient) -> None:
    """soxr overshoots full scale on a square wave; the stream clips, as decoding does."""
    t = np.arange(2 * 48000) / 48000
    square = np.where(np.sin(2 * np.pi * 300 * t) >= 0, 32767, -32768).astype("<i2")
    with client.websocket_connect("/v1/stream?sample_rate=48000") as ws:
        ws.receive_json()
        messages = stream(ws, square.tobytes(), 9600)
    assert messages[-1] == {"type": "end", "audio_s": 2.0}


def test_a_frame_of_more_than_two_seconds_closes_with_1009(client: TestClient) -> None:
    with client.websocket_connect("/v1/stream") as ws:
        ws.receive_json()
        ws.send_bytes(pcm16(np.zeros(3 * RATE, np.float32)))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1009 and "at most 2 s per frame" in closed.value.reason


def test_a_failing_model_closes_the_stream_with_1011() -> None:
    def broken(_windows: np.ndarray) -> np.ndarray:
        raise RuntimeError("boom")

    app = create_app(ServeConfig())
    app.state.service.batcher.fn = broken
    with TestClient(app) as client, client.websocket_connect("/v1/stream") as ws:
        ws.receive_json()
        ws.send_bytes(pcm16(np.zeros(RATE, np.float32)))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1011 and "model call failed" in closed.value.reason
    text = client.get("/metrics").text
    assert 'kwspot_streams_total{outcome="error"} 1.0' in text
    assert "kwspot_active_streams 0.0" in text


def test_cross_origin_streams_are_refused() -> None:
    config = ServeConfig(allowed_origins=("https://app.example",))
    with TestClient(create_app(config)) as client:
        with pytest.raises(WebSocketDenialResponse) as denied, client.websocket_connect(
                "/v1/stream", headers={"origin": "https://evil.example"}):
            pass
        assert denied.value.status_code == 403 and "evil.example" in denied.value.json()["error"]
        for origin in ("http://testserver", "https://app.example"):
            with client.websocket_connect("/v1/stream", headers={"origin": origin}) as ws:
                assert ws.receive_json()["type"] == "ready"


def test_text_frame_closes_the_audio_socket(client: TestClient) -> None:
    with client.websocket_connect("/v1/stream") as ws:
        ws.receive_json()
        ws.send_text('{"hello": 1}')
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1003 and "binary PCM" in closed.value.reason


def test_non_finite_float_audio_closes_with_1007(client: TestClient) -> None:
    with client.websocket_connect("/v1/stream?format=float32") as ws:
        ws.receive_json()
        ws.send_bytes(np.array([0.1, np.nan], "<f4").tobytes())
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1007 and "NaN" in closed.value.reason


@pytest.mark.parametrize(("query", "words"), [
    ("format=mp3", "format must be one of"),
    ("sample_rate=abc", "sample_rate must be an integer"),
    ("sample_rate=100", "sample_rate must be in"),
    ("keywords=banana", "cannot spot"),
])
def test_bad_stream_parameters_are_refused_before_accepting(client: TestClient, query: str,
                                                            words: str) -> None:
    with pytest.raises(WebSocketDenialResponse) as denied, \
            client.websocket_connect(f"/v1/stream?{query}"):
        pass
    assert denied.value.status_code == 400 and words in denied.value.json()["error"]


def test_idle_timeout_and_stream_duration_limit() -> None:
    with TestClient(create_app(ServeConfig(idle_timeout_s=0.3, max_stream_s=1.0))) as client:
        with client.websocket_connect("/v1/stream") as ws:
            ws.receive_json()
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
        assert closed.value.code == 1008 and "idle for 0.3 s" in closed.value.reason
        with client.websocket_connect("/v1/stream") as ws:
            ws.receive_json()
            ws.send_bytes(pcm16(np.zeros(int(1.5 * RATE), np.float32)))
            with pytest.raises(WebSocketDisconnect) as closed:
                while True:
                    ws.receive_json()
        assert closed.value.code == 1008 and "longer than the limit of 1 s" in closed.value.reason


def test_a_trickling_stream_still_meets_the_wall_clock_limit() -> None:
    """A client sending a sample now and then stays under the idle timeout and far below
    max_stream_s of audio; the wall-clock limit still ends it."""
    import time

    with TestClient(create_app(ServeConfig(idle_timeout_s=5, max_stream_s=0.6))) as client, \
            client.websocket_connect("/v1/stream") as ws:
        ws.receive_json()
        start = time.monotonic()
        with pytest.raises(WebSocketDisconnect) as closed:
            for _ in range(40):
                ws.send_bytes(b"\0\0")
                time.sleep(0.05)
            ws.receive_json()
        assert closed.value.code == 1008 and "longer than the limit" in closed.value.reason
        assert time.monotonic() - start < 3


def test_too_many_streams_get_503_with_retry_after() -> None:
    with TestClient(create_app(ServeConfig(max_streams=1, retry_after_s=7))) as client:
        with client.websocket_connect("/v1/stream") as first:
            first.receive_json()
            with pytest.raises(WebSocketDenialResponse) as denied, \
                    client.websocket_connect("/v1/stream"):
                pass
            assert denied.value.status_code == 503
            assert denied.value.headers["retry-after"] == "7"
        with client.websocket_connect("/v1/stream") as again:  # the slot is free again
            assert again.receive_json()["type"] == "ready"


# --- security ------------------------------------------------------------------------------------

def test_api_key_is_required_when_configured() -> None:
    with TestClient(create_app(ServeConfig(api_key=KEY))) as client:
        audio = wav_bytes(speechy_audio(1.0))
        assert client.get("/healthz").status_code == 200
        refused = client.post("/v1/detect", content=audio)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        wrong = client.post("/v1/detect", content=audio,
                            headers={"Authorization": "Bearer " + "x" * 24})
        assert wrong.status_code == 401
        assert client.get("/metrics").status_code == 401
        assert client.get("/docs").status_code == 404
        assert client.get("/openapi.json").status_code == 404
        ok = client.post("/v1/detect", content=audio, headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200
        with pytest.raises(WebSocketDenialResponse) as denied, \
                client.websocket_connect("/v1/stream"):
            pass
        assert denied.value.status_code == 401
        with client.websocket_connect(f"/v1/stream?access_token={KEY}") as ws:
            assert ws.receive_json()["type"] == "ready"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::", "example.org"])
def test_non_loopback_needs_an_api_key(host: str) -> None:
    with pytest.raises(KwspotError, match="not a loopback address, without an API key"):
        ServeConfig(host=host)
    assert ServeConfig(host=host, api_key=KEY).host == host


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.0.1", "localhost", "::1", "[::1]"])
def test_loopback_needs_no_key(host: str) -> None:
    assert ServeConfig(host=host).api_key is None


def test_config_round_trips_for_worker_processes() -> None:
    config = ServeConfig(port=9000, workers=2, batch_wait_ms=0.0,
                         detector=DetectorConfig(threshold=0.7, hop_ms=50.0))
    assert ServeConfig.from_json(config.to_json()) == config
    with pytest.raises(KwspotError, match="max_streams must be a positive integer"):
        ServeConfig(max_streams=0)
    with pytest.raises(KwspotError, match="at least 16 characters"):
        ServeConfig(api_key="short")


# --- micro-batching ------------------------------------------------------------------------------

class CountingModel:
    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        self.calls.append(len(windows))
        return windows.sum(axis=(1, 2))[:, None] * np.ones((1, 3))


def run_concurrently(batcher: MicroBatcher, requests: list[np.ndarray]) -> list[np.ndarray]:
    async def main() -> list[np.ndarray]:
        await batcher.start()
        try:
            return await asyncio.gather(*(batcher.score(r) for r in requests))
        finally:
            await batcher.stop()

    return asyncio.run(main())


def requests_of(sizes: list[int]) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal((n, 2, 4)).astype(np.float32) for n in sizes]


def test_batcher_stacks_concurrent_requests_and_splits_results() -> None:
    model = CountingModel()
    requests = requests_of([1, 3, 2, 1, 1])
    results = run_concurrently(MicroBatcher(model, max_batch=64, max_wait_ms=20), requests)
    assert model.calls == [8]  # all five arrived within the wait: one call
    for request, result in zip(requests, results, strict=True):
        assert np.allclose(result, model(request))


def test_batcher_respects_max_batch_and_can_be_off() -> None:
    model = CountingModel()
    requests = requests_of([3, 3, 10, 1, 2, 2])
    results = run_concurrently(MicroBatcher(model, max_batch=4, max_wait_ms=20), requests)
    # a request that would overflow opens the next batch; one larger than the bound goes alone
    assert model.calls == [3, 3, 10, 3, 2]
    for request, result in zip(requests, results, strict=True):
        assert np.allclose(result, model(request))
    model = CountingModel()
    run_concurrently(MicroBatcher(model, max_batch=4, max_wait_ms=20), requests_of([2] * 5))
    assert sum(model.calls) == 10 and max(model.calls) <= 4
    model = CountingModel()
    run_concurrently(MicroBatcher(model, max_batch=64, max_wait_ms=0), requests_of([2] * 5))
    assert model.calls == [2] * 5


def test_batcher_passes_a_model_error_to_every_caller_and_keeps_running() -> None:
    def broken(_windows: np.ndarray) -> np.ndarray:
        raise RuntimeError("model failed")

    async def main() -> None:
        batcher = MicroBatcher(broken, max_wait_ms=5)
        await batcher.start()
        for _ in range(2):
            results = await asyncio.gather(*(batcher.score(r) for r in requests_of([1, 2])),
                                           return_exceptions=True)
            assert all(isinstance(r, RuntimeError) for r in results)
        await batcher.stop()

    asyncio.run(main())


def test_stopping_the_batcher_fails_waiting_callers() -> None:
    async def main() -> None:
        batcher = MicroBatcher(CountingModel(), max_wait_ms=200)
        await batcher.start()
        waiting = [asyncio.create_task(batcher.score(r)) for r in requests_of([1, 1])]
        await asyncio.sleep(0.01)
        await batcher.stop()
        results = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 2)
        assert all(isinstance(r, (RuntimeError, asyncio.CancelledError)) for r in results)

    asyncio.run(main())


def test_cli_refuses_non_loopback_without_key(capsys: pytest.CaptureFixture) -> None:
    from kwspot.cli import main

    assert main(["serve", "--host", "0.0.0.0"]) != 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not a loopback address" in err


def test_stream_messages_are_json_with_a_type(client: TestClient) -> None:
    with client.websocket_connect("/v1/stream?scores=1") as ws:
        ready = ws.receive_json()
        assert set(ready) >= {"labels", "keywords", "thresholds", "sample_rate", "hop_s"}
        messages = stream(ws, pcm16(speechy_audio(1.0)), 1600)
    assert all(m["type"] in ("scores", "detection", "end") for m in messages)
    json.dumps(messages)
