"""What gets reviewed and in which order. Any data set ``kwspot train`` reads (a label folder,
Speech Commands, a CSV or JSONL manifest) gives the clips with their own labels (no keyword
recipe: a reviewer judges "bed", not "_unknown_"). With a model, the clips whose label it
doubts most come first: the lowest posterior for the clip's own label (a label the model does
not know counts as its ``_unknown_``)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from kwspot.clips import decode_clips
from kwspot.data import Utterance, given_label
from kwspot.datasets import DataConfig, open_dataset
from kwspot.errors import KwspotError
from kwspot.review.store import Judgement, ReviewStore

ORDERS = ("model", "random", "data")
LONG_FACTOR = 1.5  # a clip longer than 1.5 model windows is a recording: it gets segments
LEASE_S = 300.0  # a clip shown to one annotator is not shown to another for this long


@dataclass(frozen=True)
class ReviewClip:
    index: int
    path: str
    label: str
    split: str
    speaker: str
    duration_s: float | None  # None: the header cannot be read


def model_id(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def clip_duration(path: str) -> float | None:
    try:
        info = sf.info(path)
        return info.frames / info.samplerate if info.samplerate else None
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError):
        return None


class ReviewSet:
    """The clips, their labels, the model's view of them, and each annotator's queue."""

    def __init__(self, clips: list[ReviewClip], store: ReviewStore, model: Any | None = None,
                 order: str = "model", k: int = 1, seed: int = 0) -> None:
        if order not in ORDERS:
            raise KwspotError(f"order must be one of {ORDERS}, got {order!r}")
        if k < 1:
            raise KwspotError(f"each clip needs at least one review (k >= 1), got {k}")
        if not clips:
            raise KwspotError("no clips to review")
        self.clips = clips
        self.by_path = {c.path: c for c in clips}
        self.store = store
        self.model = model
        self.k = k
        self.labels = sorted({c.label for c in clips})
        self.predictions: dict[str, tuple[str, float, float | None]] = {}
        self.leases: dict[int, dict[str, float]] = defaultdict(dict)  # clip -> holder: until
        # who judged each clip, kept in memory (loaded once, updated on every submit), so a
        # step of the review never rereads the table; the lock makes "next" + "hold" atomic
        self.lock = threading.Lock()
        self.reviewers: dict[str, set[str]] = defaultdict(set)
        self.counts: dict[str, int] = defaultdict(int)
        for j in store.judgements():
            self._count(j.clip, j.annotator)
        if order == "model" and model is None:
            order = "data"
        self.order_name = order
        if model is not None:
            self.predictions = self._predict()
        self.order = self._order(order, seed)

    def is_long(self, clip: ReviewClip) -> bool:
        if clip.duration_s is None or self.model is None:
            return bool(clip.duration_s and clip.duration_s > LONG_FACTOR)
        return clip.duration_s * self.model.sample_rate > LONG_FACTOR * self.model.window_samples

    def _predict(self, batch: int = 256) -> dict[str, tuple[str, float, float | None]]:
        """(top label, its score, the posterior of the clip's own label) for every short
        clip; the posteriors are cached in the store by model file hash."""
        model = self.model
        key = model_id(model.path)
        cached = self.store.posteriors(key)
        todo = [c for c in self.clips if c.path not in cached and not self.is_long(c)
                and c.duration_s is not None]
        for i in range(0, len(todo), batch):
            # a clip that does not decode is left out; the page reports it when it comes up
            table = decode_clips([Utterance(c.path, c.label, c.split) for c in todo[i : i + batch]],
                                 model.window_samples, model.sample_rate)
            if table.utterances:
                rows = list(zip([str(u.path) for u in table.utterances],
                                model.posteriors(table.audio).tolist(), strict=True))
                self.store.save_posteriors(key, rows)
                cached.update(rows)
        out = {}
        for c in self.clips:
            p = cached.get(c.path)
            if p is None or len(p) != len(model.labels):
                continue
            best = int(np.argmax(p))
            given = given_label(c.label, model.labels)
            out[c.path] = (model.labels[best], float(p[best]),
                           float(p[model.labels.index(given)]) if given else None)
        return out

    def _order(self, order: str, seed: int) -> list[int]:
        indices = list(range(len(self.clips)))
        if order == "random":
            return [int(i) for i in np.random.default_rng(seed).permutation(len(indices))]
        if order == "model":
            def doubt(i: int) -> tuple[int, float, int]:
                pred = self.predictions.get(self.clips[i].path)
                if pred is None or pred[2] is None:
                    return (1, 0.0, i)  # no opinion: after every clip the model judged
                return (0, pred[2], i)
            return sorted(indices, key=doubt)
        return indices

    def prediction(self, clip: ReviewClip) -> dict[str, Any] | None:
        pred = self.predictions.get(clip.path)
        if pred is None:
            return None
        label, score, p_given = pred
        given = given_label(clip.label, self.model.labels) if self.model else None
        return {"label": label, "score": round(score, 4),
                "p_given": None if p_given is None else round(p_given, 4),
                "agrees": given == label}

    def _count(self, clip: str, annotator: str) -> None:
        if clip in self.by_path and annotator not in self.reviewers[clip]:
            self.reviewers[clip].add(annotator)
            self.counts[annotator] += 1

    def queue(self, annotator: str, limit: int | None = None) -> list[int]:
        """Clip indices ``annotator`` should see, in order: not judged by them, and fewer
        than ``k`` annotators have judged it or have it on screen (a hold)."""
        now = time.monotonic()
        out = []
        for i in self.order:
            judged = self.reviewers.get(self.clips[i].path, set())
            if annotator in judged:
                continue
            holders = {a for a, until in list(self.leases.get(i, {}).items())
                       if a != annotator and until > now}
            if len(judged | holders) >= self.k:
                continue  # enough reviews, given or under way
            out.append(i)
            if limit is not None and len(out) >= limit:
                break
        return out

    def take_next(self, annotator: str) -> tuple[int | None, int]:
        """The next clip for ``annotator``, held for them; (None, 0) when none is left.
        Atomic across threads, so two annotators are never handed the same clip beyond k."""
        with self.lock:
            queue = self.queue(annotator)
            if not queue:
                return None, 0
            self.leases[queue[0]][annotator] = time.monotonic() + LEASE_S
            return queue[0], len(queue)

    def record(self, judgement: Judgement, index: int) -> Judgement:
        """Store a judgement, count it, and free the annotator's hold on the clip."""
        saved = self.store.add(judgement)
        with self.lock:
            self._count(judgement.clip, judgement.annotator)
            self.leases.get(index, {}).pop(judgement.annotator, None)
        return saved

    def progress(self) -> dict[str, Any]:
        done = sum(len(r) >= self.k for r in self.reviewers.values())
        return {"clips": len(self.clips), "done": done, "k": self.k,
                "annotators": dict(sorted(self.counts.items()))}


def read_clips(data: str | Path, label_regex: str | None = None,
               progress: Callable[[str], None] | None = None) -> list[ReviewClip]:
    """Every audio clip of a data set with its own label, split and speaker."""
    dataset = open_dataset(DataConfig(path=str(data), keywords=(), label_regex=label_regex))
    rows = [u for u in dataset.utterances if u.path]
    if progress:
        progress(f"reading {len(rows)} clip headers")
    return [ReviewClip(i, str(Path(u.path).resolve()), u.label, u.split, u.speaker,
                       clip_duration(u.path)) for i, u in enumerate(rows)]


def load_review_set(data: str | Path, store: ReviewStore, model_path: str | None = None,
                    order: str = "model", k: int = 1, seed: int = 0,
                    label_regex: str | None = None,
                    progress: Callable[[str], None] | None = None) -> ReviewSet:
    clips = read_clips(data, label_regex, progress)
    model = None
    if model_path:
        from kwspot.runtime.model import load_keyword_model

        model = load_keyword_model(model_path)
        if progress:
            progress(f"scoring {len(clips)} clips with {model.path.name} (cached after)")
    return ReviewSet(clips, store, model, order, k, seed)
