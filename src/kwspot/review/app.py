"""The review app (FastAPI): JSON under ``/api``, the page at ``/``. Audio is served only by
clip number, for clips of the loaded data set: no URL names a file. Nothing is rendered as
HTML on the server; the page puts every label and comment in as text."""

from __future__ import annotations

import functools
import io
import threading
import time
from collections import defaultdict
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from kwspot.audio import load_audio
from kwspot.errors import KwspotError
from kwspot.review.agreement import agreement_report
from kwspot.review.clips import ReviewClip, ReviewSet
from kwspot.review.store import Judgement, check_segments
from kwspot.serving.config import is_loopback
from kwspot.serving.http import (
    RequestError,
    error,
    host_name,
    install_error_handlers,
    same_origin,
)

STATIC = resources.files("kwspot.review") / "static"
REVIEW_RATE = 16000
MAX_NAME = 64
MAX_REVIEW_S = 1800.0  # longer recordings: split them first (the page holds the whole clip)
MAX_COLUMNS = 4000  # spectrogram width in pixels at most, however long the clip


class JudgementIn(BaseModel):
    clip_id: int
    annotator: str = Field(min_length=1, max_length=MAX_NAME)
    verdict: str
    label: str | None = Field(default=None, max_length=200)
    comment: str = Field(default="", max_length=5000)
    segments: list[dict[str, Any]] = Field(default_factory=list, max_length=500)


def spectrogram_png(audio: np.ndarray, rate: int, height: int = 160) -> bytes:
    """A log-power spectrogram (25 ms windows), 0-8 kHz, as a PNG strip: one column per
    10 ms, or fewer (at most ``MAX_COLUMNS``) for long recordings, so memory stays small."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image
    from matplotlib import cm

    win = int(0.025 * rate)
    if len(audio) < win:
        audio = np.pad(audio, (0, win - len(audio)))
    count = min(MAX_COLUMNS, 1 + (len(audio) - win) // int(0.010 * rate))
    starts = np.linspace(0, len(audio) - win, count).astype(int)
    window = np.hanning(win).astype(np.float32)
    db = np.empty((257, count), np.float32)
    for i in range(0, count, 512):  # in blocks: a frame matrix of the whole hour never exists
        frames = audio[starts[i : i + 512, None] + np.arange(win)] * window
        db[:, i : i + 512] = 10 * np.log10(np.abs(np.fft.rfft(frames, n=512, axis=1)).T ** 2
                                           + 1e-10)
    db = np.clip((db - (db.max() - 80)) / 80, 0, 1)[::-1]  # 80 dB range, low frequencies down
    rows = np.linspace(0, db.shape[0] - 1, height).astype(int)
    image = (cm.magma(db[rows])[:, :, :3] * 255).astype(np.uint8)
    buffer = io.BytesIO()
    matplotlib.image.imsave(buffer, image, format="png")
    return buffer.getvalue()


def create_review_app(review: ReviewSet, default_annotator: str = "",
                      data_root: str | None = None) -> FastAPI:
    """The app. Requests must name a loopback host (``serving.config.is_loopback``, the rule
    ``kwspot review --host`` is checked with: a page on evil.example whose name was rebound
    to 127.0.0.1 sends ``Host: evil.example``) and come from no other origin."""
    app = FastAPI(title="kwspot review", docs_url=None, redoc_url=None, openapi_url=None)
    root = Path(data_root).resolve() if data_root else None
    suggestions: dict[int, list[dict[str, Any]]] = {}
    # one detection per clip however many ask at once; other clips' requests do not wait
    clip_locks: defaultdict[int, threading.Lock] = defaultdict(threading.Lock)
    locks_lock = threading.Lock()

    install_error_handlers(app)

    @app.middleware("http")
    async def local_pages_only(request: Request, call_next):
        """Any web page can send requests to 127.0.0.1: only this server's own page may."""
        host = request.headers.get("host", "")
        if not is_loopback(host_name(host)):
            return error(403, f"host {host!r} refused: open the review at 127.0.0.1")
        origin = request.headers.get("origin")
        if not same_origin(origin, host):
            return error(403, f"cross-origin request from {origin!r} refused")
        return await call_next(request)

    def clip_of(clip_id: int) -> ReviewClip:
        if not 0 <= clip_id < len(review.clips):
            raise RequestError(404, f"no clip {clip_id}")
        return review.clips[clip_id]

    def describe(clip: ReviewClip) -> dict[str, Any]:
        """What the page shows of a clip (not other annotators' verdicts: blind review)."""
        path = Path(clip.path)
        name = str(path.relative_to(root)) if root and path.is_relative_to(root) else path.name
        return {"id": clip.index, "name": name, "label": clip.label, "split": clip.split,
                "speaker": clip.speaker, "duration_s": clip.duration_s,
                "long": review.is_long(clip), "prediction": review.prediction(clip),
                "reviews": len(review.reviewers.get(clip.path, ()))}

    @functools.lru_cache(maxsize=4)
    def decoded(path: str, rate: int) -> np.ndarray:
        # the page asks for a clip's audio and its spectrogram (and, for a recording, the
        # model's suggestions) together: one decode serves them all
        return load_audio(path, rate)

    def clip_audio_at(clip: ReviewClip, rate: int) -> np.ndarray:
        if clip.duration_s is not None and clip.duration_s > MAX_REVIEW_S:
            raise RequestError(413, f"{Path(clip.path).name}: {clip.duration_s:.0f} s is longer "
                                 f"than the {MAX_REVIEW_S:.0f} s the page can hold; split it")
        try:
            return decoded(clip.path, rate)
        except KwspotError as exc:
            raise RequestError(422, str(exc)) from None

    def annotator_name(text: str | None) -> str:
        name = (text or default_annotator).strip()
        if not name or len(name) > MAX_NAME:
            raise RequestError(400, f"an annotator name of 1-{MAX_NAME} characters is needed")
        return name

    @app.get("/api/state")
    def state(annotator: str | None = None) -> dict[str, Any]:
        name = annotator_name(annotator)
        return {"annotator": name, "labels": review.labels, "order": review.order_name,
                "model": review.model.path.name if review.model else None,
                "progress": review.progress()}

    @app.post("/api/next")
    def next_clip(annotator: str | None = None) -> dict[str, Any]:
        """The next clip, held for this annotator (a POST: it changes what others get)."""
        name = annotator_name(annotator)
        index, remaining = review.take_next(name)
        if index is None:
            return {"done": True}
        return {"done": False, "remaining": remaining, "clip": describe(review.clips[index])}

    @app.get("/api/clips/{clip_id}/audio")
    def clip_audio(clip_id: int) -> Response:
        audio = clip_audio_at(clip_of(clip_id), REVIEW_RATE)
        buffer = io.BytesIO()
        sf.write(buffer, audio, REVIEW_RATE, format="WAV", subtype="PCM_16")
        return Response(buffer.getvalue(), media_type="audio/wav")

    @app.get("/api/clips/{clip_id}/spectrogram.png")
    def clip_spectrogram(clip_id: int) -> Response:
        audio = clip_audio_at(clip_of(clip_id), REVIEW_RATE)
        return Response(spectrogram_png(audio, REVIEW_RATE), media_type="image/png")

    @app.get("/api/clips/{clip_id}/suggestions")
    def clip_suggestions(clip_id: int) -> dict[str, Any]:
        """The model's detections in a long recording, as segments to accept or edit."""
        clip = clip_of(clip_id)
        if review.model is None or not review.is_long(clip):
            return {"segments": []}
        with locks_lock:
            lock = clip_locks[clip_id]
        with lock:
            if clip_id not in suggestions:
                from kwspot.runtime.detector import detect_audio

                audio = clip_audio_at(clip, review.model.sample_rate)
                duration = len(audio) / review.model.sample_rate
                # an event's time is the keyword's estimated centre; a word lasts ~0.6 s
                suggestions[clip_id] = [
                    {"start": round(max(0.0, e.time_s - 0.3), 2),
                     "end": round(min(duration, e.time_s + 0.3), 2),
                     "label": e.keyword, "score": round(e.score, 3)}
                    for e in detect_audio(audio, review.model)]
            return {"segments": suggestions[clip_id]}

    @app.post("/api/judgements", status_code=201)
    def submit(body: JudgementIn) -> dict[str, Any]:
        clip = clip_of(body.clip_id)
        name = annotator_name(body.annotator)
        if body.verdict not in ("correct", "incorrect"):
            raise RequestError(400, "verdict must be 'correct' or 'incorrect'")
        label = (body.label or "").strip() or None
        if body.verdict == "correct":
            label = None
        try:
            segments = check_segments(body.segments, clip.duration_s)
        except KwspotError as exc:
            raise RequestError(400, str(exc)) from None
        saved = review.record(Judgement(clip.path, name, body.verdict, clip.label, label,
                                        body.comment.strip(), segments), clip.index)
        return {"id": saved.id, "clip_id": clip.index, "created": saved.created,
                "progress": review.progress()}

    @app.get("/api/history")
    def history(annotator: str | None = None, limit: int = 10) -> dict[str, Any]:
        name = annotator_name(annotator)
        mine = review.store.history(name, max(1, min(limit, 100)))
        return {"judgements": [
            {"id": j.id, "clip_id": review.by_path[j.clip].index if j.clip in review.by_path
             else None, "name": Path(j.clip).name, "verdict": j.verdict,
             "label": j.implied_label, "comment": j.comment, "segments": j.segments,
             "at": time.strftime("%H:%M:%S", time.localtime(j.created))}
            for j in mine]}

    @app.get("/api/agreement")
    def agreement() -> dict[str, Any]:
        return agreement_report(review.store.judgements())

    @app.get("/")
    def index() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return app
