"""The HTTP/WebSocket API (FastAPI):

- ``POST /v1/detect``: an audio file (raw body or multipart ``file``) -> detections;
- ``POST /v1/classify``: a clip -> posteriors per label;
- ``WS /v1/stream?sample_rate=R&format=int16|float32``: binary PCM frames of any size in, JSON
  events out; an empty binary frame ends the stream (the last events, then ``end``);
- ``GET /healthz``, ``GET /metrics`` (Prometheus), ``GET /`` (the microphone demo).

Every error is JSON ``{"error": "one line"}`` with a 4xx status, or a WebSocket close code with
a one-line reason (``CLOSE_*`` below).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import io
import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, Protocol

import numpy as np
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.websockets import WebSocketDisconnect, WebSocketState

from kwspot.audio import fit_length, iter_audio_blocks
from kwspot.data import parse_words
from kwspot.errors import AudioError, KwspotError
from kwspot.runtime.detector import Detection, Detector, DetectorConfig
from kwspot.runtime.model import load_keyword_model
from kwspot.serving.batching import MicroBatcher
from kwspot.serving.config import ServeConfig
from kwspot.serving.http import RequestError, error, install_error_handlers, same_origin
from kwspot.serving.metrics import ServerMetrics
from kwspot.serving.streams import FrameTooLarge, StreamFormat, StreamSession

CLOSE_NORMAL = 1000
CLOSE_UNSUPPORTED = 1003  # a text frame on the audio socket
CLOSE_BAD_AUDIO = 1007  # NaN/inf float samples
CLOSE_POLICY = 1008  # stream too long, idle too long
CLOSE_BAD_REQUEST = 4400  # query parameters refused (when a denial response is impossible)
CLOSE_UNAUTHORIZED = 4401
CLOSE_BUSY = 1013  # try again later (when a denial response is impossible)
CLOSE_FORBIDDEN = 4403  # a foreign origin (when a denial response is impossible)
CLOSE_TOO_BIG = 1009  # a frame of more than MAX_FRAME_S of audio
CLOSE_INTERNAL = 1011  # the model call failed
MAX_CLASSIFY_S = 30.0

logger = logging.getLogger("kwspot.serving")

STATIC = resources.files("kwspot.serving") / "static"


def event_json(e: Detection) -> dict[str, Any]:
    return {"type": "detection", "keyword": e.keyword, "time_s": round(e.time_s, 3),
            "end_s": round(e.end_s, 3), "score": round(e.score, 4)}


def _float_param(params: Any, name: str) -> float | None:
    text = params.get(name)
    if text in (None, ""):
        return None
    try:
        return float(text)
    except ValueError:
        raise RequestError(400, f"{name} must be a number, got {text!r}") from None


def detector_settings(params: Any, base: DetectorConfig) -> tuple[DetectorConfig, list | None]:
    """Per-request overrides (``threshold``, ``keywords``) of the server's detector settings."""
    threshold = _float_param(params, "threshold")
    try:
        cfg = base if threshold is None else dataclasses.replace(base, threshold=threshold)
    except KwspotError as exc:
        raise RequestError(400, str(exc)) from None
    words = params.get("keywords")
    keywords = list(parse_words(words)) if words else None
    return cfg, keywords


class Batcher(Protocol):
    """What the streams need from a batcher: ``await score(windows) -> posteriors``."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def score(self, windows: np.ndarray) -> np.ndarray: ...


class Service:
    """The model, its batcher and the server's state, shared by all requests of one worker."""

    def __init__(self, config: ServeConfig, batcher: Batcher | None = None) -> None:
        self.config = config
        self.model = load_keyword_model(config.model)
        self.metrics = ServerMetrics()
        # one detector built now checks the settings before the port opens; its scorer's
        # ``score`` is the model call every stream's windows go through
        self.score_windows = Detector(self.model, config.detector).scorer.score
        self.batcher: Batcher = batcher or MicroBatcher(
            self.score_windows, config.max_batch, config.batch_wait_ms, self.metrics)
        self.active_streams = 0
        self.pending_uploads = 0
        # uploads are batch work: one thread runs them in turn, so a burst of detects queues
        # instead of taking the GIL and the cores from the live streams (and from the model)
        self.upload_executor = ThreadPoolExecutor(1, thread_name_prefix="kwspot-upload")

    @asynccontextmanager
    async def upload_slot(self):
        """One of ``max_pending_uploads`` places in the upload queue, held from the first
        byte read to the answer; none free -> 503 + Retry-After."""
        if self.pending_uploads >= self.config.max_pending_uploads:
            raise RequestError(503, f"server busy: {self.pending_uploads} uploads already "
                               "waiting", {"Retry-After": str(self.config.retry_after_s)})
        self.pending_uploads += 1
        try:
            yield
        finally:
            self.pending_uploads -= 1

    async def run_upload(self, fn: Callable[..., dict[str, Any]], *args: Any
                         ) -> dict[str, Any]:
        return await asyncio.get_running_loop().run_in_executor(
            self.upload_executor, fn, *args)

    def detector(self, cfg: DetectorConfig, keywords: list | None) -> Detector:
        try:
            return Detector(self.model, cfg, keywords)
        except KwspotError as exc:
            raise RequestError(400, str(exc)) from None

    def authorized(self, headers: Any, params: Any | None = None) -> bool:
        key = self.config.api_key
        if not key:
            return True
        given = headers.get("authorization", "")
        token = given[7:] if given.lower().startswith("bearer ") else ""
        if not token and params is not None:  # browsers cannot set WebSocket headers
            token = params.get("access_token", "")
        return hmac.compare_digest(token.encode(), key.encode())

    async def read_body(self, request: Request) -> bytes:
        """The upload, refused (413) as soon as it passes the size limit."""
        limit = self.config.max_upload_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise RequestError(413, f"upload of {int(declared)} bytes is over the limit of "
                               f"{limit} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise RequestError(413, f"upload is over the limit of {limit} bytes")
        data = bytes(body)
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            data = await self._form_file(request, data)
        if not data:
            raise RequestError(400, "empty upload: send an audio file as the request body "
                               "or as the multipart field 'file'")
        return data

    @staticmethod
    async def _form_file(request: Request, body: bytes) -> bytes:
        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(request.scope, replay).form()
        except Exception as exc:  # python-multipart's errors have no common base
            raise RequestError(400, f"malformed multipart upload ({exc})") from None
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise RequestError(400, "multipart upload needs a file field named 'file'")
        return await upload.read()

    def blocks(self, data: bytes, max_s: float) -> Iterator[np.ndarray]:
        """Decoded upload at the model's rate, block by block, stopped past ``max_s``."""
        rate = self.model.sample_rate
        total = 0
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a truncated upload still decodes
                for block in iter_audio_blocks(io.BytesIO(data), rate, name="upload"):
                    total += len(block)
                    if total > max_s * rate:
                        raise RequestError(413, f"upload holds more than {max_s:g} s of audio")
                    yield block
        except AudioError as exc:
            raise RequestError(415, str(exc)) from None

    def detect(self, data: bytes, cfg: DetectorConfig, keywords: list | None
               ) -> dict[str, Any]:
        detector = self.detector(cfg, keywords)
        events: list[Detection] = []
        samples = 0
        for block in self.blocks(data, self.config.max_upload_s):
            samples += len(block)
            events.extend(detector.push(block))
        events.extend(detector.flush())
        for e in events:
            self.metrics.detections.labels(e.keyword, "detect").inc()
        return {"duration_s": round(samples / self.model.sample_rate, 3),
                "detections": [{k: v for k, v in event_json(e).items() if k != "type"}
                               for e in events]}

    def classify(self, data: bytes) -> dict[str, Any]:
        blocks = list(self.blocks(data, MAX_CLASSIFY_S))
        if not blocks:
            raise RequestError(415, "upload: too short to hold one sample at "
                               f"{self.model.sample_rate} Hz")
        audio = np.concatenate(blocks)
        window = fit_length(audio, self.model.window_samples)
        posteriors = self.model.posteriors(window[None])[0]
        best = int(np.argmax(posteriors))
        return {"label": self.model.labels[best], "score": round(float(posteriors[best]), 4),
                "duration_s": round(len(audio) / self.model.sample_rate, 3),
                "posteriors": {label: round(float(p), 5)
                               for label, p in zip(self.model.labels, posteriors, strict=True)}}


def create_app(config: ServeConfig, batcher: Batcher | None = None) -> FastAPI:
    """The app; ``batcher`` replaces the built-in micro-batcher (Ray Serve passes its own)."""
    service = Service(config, batcher)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        await service.batcher.start()
        yield
        await service.batcher.stop()
        service.upload_executor.shutdown(wait=False, cancel_futures=True)
        service.metrics.process_exits()

    # with a key, nothing but /, /static and /healthz is open: no /docs or /openapi.json
    public_docs = not config.api_key
    app = FastAPI(title="kwspot", version=_version(), lifespan=lifespan, redoc_url=None,
                  docs_url="/docs" if public_docs else None,
                  openapi_url="/openapi.json" if public_docs else None)
    app.state.service = service

    @app.middleware("http")
    async def measure(request: Request, call_next):
        route = request.url.path if request.url.path in ROUTES else "other"
        start = time.perf_counter()
        if request.url.path.startswith(("/v1/", "/metrics")) and \
                not service.authorized(request.headers):
            response: Response = error(401, "missing or wrong API key (Authorization: Bearer)",
                                       {"WWW-Authenticate": "Bearer"})
        else:
            response = await call_next(request)
        service.metrics.request_seconds.labels(route).observe(time.perf_counter() - start)
        service.metrics.requests.labels(route, str(response.status_code)).inc()
        return response

    install_error_handlers(app)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        model = service.model
        return {"status": "ok", "model": model.path.name, "pid": os.getpid(),
                "labels": model.labels, "sample_rate": model.sample_rate,
                "active_streams": service.active_streams}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(service.metrics.render(), media_type=service.metrics.content_type)

    @app.post("/v1/detect")
    async def detect(request: Request) -> dict[str, Any]:
        cfg, keywords = detector_settings(request.query_params, config.detector)
        async with service.upload_slot():
            data = await service.read_body(request)
            return await service.run_upload(service.detect, data, cfg, keywords)

    @app.post("/v1/classify")
    async def classify(request: Request) -> dict[str, Any]:
        async with service.upload_slot():
            data = await service.read_body(request)
            return await service.run_upload(service.classify, data)

    @app.websocket("/v1/stream")
    async def stream(websocket: WebSocket) -> None:
        await run_stream(service, websocket)

    @app.get("/")
    async def index() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return app


ROUTES = frozenset({"/", "/healthz", "/metrics", "/v1/detect", "/v1/classify"})


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kwspot")
    except PackageNotFoundError:
        return "0"


async def deny(websocket: WebSocket, status: int, message: str, close_code: int,
               headers: dict[str, str] | None = None) -> None:
    """Refuse a WebSocket before accepting it: an HTTP response where the server supports
    it (uvicorn does), else a close code."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(error(status, message, headers))
    else:
        await websocket.close(close_code, message[:120])


def stream_settings(service: Service, websocket: WebSocket
                    ) -> tuple[StreamFormat, DetectorConfig, list | None, bool]:
    params = websocket.query_params
    rate_text = params.get("sample_rate", str(service.model.sample_rate))
    try:
        rate = int(rate_text)
    except ValueError:
        raise RequestError(400, f"sample_rate must be an integer, got {rate_text!r}") from None
    try:
        fmt = StreamFormat(rate, params.get("format", "int16"))
    except KwspotError as exc:
        raise RequestError(400, str(exc)) from None
    cfg, keywords = detector_settings(params, service.config.detector)
    scores = params.get("scores", "").lower() in ("1", "true", "yes")
    return fmt, cfg, keywords, scores


async def run_stream(service: Service, websocket: WebSocket) -> None:
    config = service.config
    metrics = service.metrics
    if not service.authorized(websocket.headers, websocket.query_params):
        await deny(websocket, 401, "missing or wrong API key (Authorization: Bearer or "
                   "access_token)", CLOSE_UNAUTHORIZED, {"WWW-Authenticate": "Bearer"})
        metrics.streams_total.labels("unauthorized").inc()
        return
    if not same_origin(websocket.headers.get("origin"), websocket.headers.get("host", ""),
                       config.allowed_origins):
        await deny(websocket, 403, "cross-origin WebSocket refused: origin "
                   f"{websocket.headers.get('origin')!r} is not this server's "
                   "(see allowed_origins)", CLOSE_FORBIDDEN)
        metrics.streams_total.labels("forbidden").inc()
        return
    if service.active_streams >= config.max_streams:
        await deny(websocket, 503, f"server busy: {config.max_streams} streams already open",
                   CLOSE_BUSY, {"Retry-After": str(config.retry_after_s)})
        metrics.streams_total.labels("busy").inc()
        return
    try:
        fmt, cfg, keywords, want_scores = stream_settings(service, websocket)
        session = StreamSession(service.detector(cfg, keywords), fmt)
    except RequestError as exc:
        await deny(websocket, exc.status, str(exc), CLOSE_BAD_REQUEST)
        metrics.streams_total.labels("refused").inc()
        return
    service.active_streams += 1
    metrics.active_streams.inc()
    outcome = "error"
    try:
        await websocket.accept()
        detector = session.detector
        await websocket.send_json({
            "type": "ready", "labels": service.model.labels, "keywords": detector.keywords,
            "thresholds": dict(zip(detector.keywords, map(float, detector.thresholds),
                                   strict=True)),
            "sample_rate": service.model.sample_rate, "hop_s": detector.hop /
            service.model.sample_rate, "input": {"sample_rate": fmt.sample_rate,
                                                 "format": fmt.format}})
        outcome = await _stream_loop(service, websocket, session, want_scores)
    except WebSocketDisconnect:
        outcome = "disconnected"
    finally:
        service.active_streams -= 1
        metrics.active_streams.dec()
        metrics.streams_total.labels(outcome).inc()


async def _stream_loop(service: Service, websocket: WebSocket, session: StreamSession,
                       want_scores: bool) -> str:
    config = service.config
    metrics = service.metrics
    deadline = time.monotonic() + config.max_stream_s  # wall clock, not only audio received
    while True:
        left = deadline - time.monotonic()
        try:
            message = await asyncio.wait_for(websocket.receive(),
                                             max(0.0, min(config.idle_timeout_s, left)))
        except TimeoutError:
            if time.monotonic() >= deadline:
                await _close(websocket, CLOSE_POLICY,
                             f"stream longer than the limit of {config.max_stream_s:g} s")
                return "too-long"
            await _close(websocket, CLOSE_POLICY, f"idle for {config.idle_timeout_s:g} s")
            return "idle"
        received = time.perf_counter()
        if message["type"] == "websocket.disconnect":
            return "disconnected"
        if message.get("text") is not None:
            await _close(websocket, CLOSE_UNSUPPORTED, "text frames are not accepted: send "
                         "binary PCM frames (an empty binary frame ends the stream)")
            return "text-frame"
        data: bytes = message.get("bytes") or b""
        end = not data
        received = session.received_s
        try:
            ends, windows = session.take_end() if end else session.take(data)
        except FrameTooLarge as exc:
            await _close(websocket, CLOSE_TOO_BIG, str(exc))
            return "frame-too-large"
        except KwspotError as exc:
            await _close(websocket, CLOSE_BAD_AUDIO, str(exc))
            return "bad-audio"
        metrics.audio_seconds.inc(session.received_s - received)
        if len(windows):
            try:
                posteriors = await service.batcher.score(windows)
            except Exception as exc:  # the model or the shutdown: one line, then close
                logger.error("model call failed on a stream: %s", exc)
                await _close(websocket, CLOSE_INTERNAL, "internal error: the model call "
                             "failed")
                return "error"
            events, ends, smoothed = session.accept(ends, posteriors)
            if want_scores:
                await websocket.send_text(json.dumps({
                    "type": "scores", "end_s": [round(float(t), 3) for t in ends],
                    "scores": np.round(smoothed, 4).tolist()}))
            for e in events:
                await websocket.send_text(json.dumps(event_json(e)))
                metrics.detections.labels(e.keyword, "stream").inc()
                metrics.event_seconds.observe(time.perf_counter() - received)
        if end:
            await websocket.send_json({"type": "end", "audio_s": round(session.received_s, 3)})
            await _close(websocket, CLOSE_NORMAL, "end of stream")
            return "completed"
        if session.received_s > config.max_stream_s or time.monotonic() > deadline:
            await _close(websocket, CLOSE_POLICY,
                         f"stream longer than the limit of {config.max_stream_s:g} s")
            return "too-long"


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state != WebSocketState.DISCONNECTED:
        await websocket.close(code, reason[:120])  # a close reason is at most 123 bytes


def app_from_environment() -> FastAPI:
    """uvicorn's worker processes build the app from ``KWSPOT_SERVE_CONFIG`` (JSON)."""
    return create_app(ServeConfig.from_json(os.environ["KWSPOT_SERVE_CONFIG"]))

