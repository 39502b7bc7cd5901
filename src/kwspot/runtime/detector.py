"""Keyword detection on a stream: posteriors every hop (``StreamScorer``), averaged over
``smooth`` (the score track), then ``EventLogic`` turns the track into events.

A keyword fires at the first hop where its smoothed score reaches its threshold (per-keyword
thresholds come from the model card once ``kwspot calibrate`` has written them). The detector
then stays quiet until every keyword's score has fallen below its threshold *and*
``refractory`` has passed since the event, both measured on one clock (the stream time when
the event fired), so sustained confusable audio fires once, not every second.

One ``Detector`` per stream; it keeps its state explicitly and never shares it. ``kwspot
eval-stream`` computes the score track once and replays ``EventLogic`` at many thresholds:
the same code ``kwspot detect`` runs.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from kwspot.data import SILENCE, UNKNOWN
from kwspot.errors import KwspotError
from kwspot.runtime.engine import StreamScorer
from kwspot.runtime.model import KeywordModel, load_keyword_model, silence_for

DEFAULT_THRESHOLD = 0.8
DEFAULT_HOP_MS = 100.0


def default_hop_ms(model: Any) -> float:
    """The hop a model's card asks for (``detector.hop_ms``: a wake-word model steps by its
    80 ms embeddings), else 100 ms."""
    card = getattr(model, "card", None) or {}
    hop = (card.get("detector") or {}).get("hop_ms") if isinstance(card, dict) else None
    return float(hop) if isinstance(hop, int | float) and not isinstance(hop, bool) \
        and hop > 0 else DEFAULT_HOP_MS
INT16_SCALE = 32768.0
# A spoken keyword lasts ~0.4 s: its centre is estimated this long before its end. Where the
# keyword ended is the event's window end minus the model's firing latency, as `kwspot
# calibrate` measured it on validation streams (the card's ``calibration.latency_s``; it
# differs by model: ~0 s for "same"-padded TC-ResNet8, ~0.25 s for a causal one scored
# incrementally), else the smoothing lag.
HALF_KEYWORD_S = 0.2


def _finite(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not math.isfinite(value):
        raise KwspotError(f"{name} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class DetectorConfig:
    """``threshold`` sets one threshold for every keyword and ``thresholds`` per keyword;
    with neither, the model card's calibrated thresholds apply, else 0.8."""

    threshold: float | None = None
    hop_ms: float | None = None  # None: the model card's ``detector.hop_ms``, else 100
    smooth_ms: float = 300.0
    refractory_ms: float = 1000.0
    thresholds: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("hop_ms", "smooth_ms", "refractory_ms"):
            if getattr(self, name) is not None:
                _finite(name, getattr(self, name))
        if (self.hop_ms is not None and self.hop_ms <= 0) or self.smooth_ms < 0 or \
                self.refractory_ms < 0:
            raise KwspotError("hop must be > 0; smoothing and refractory must be >= 0")
        values = list(self.thresholds.values()) + (
            [self.threshold] if self.threshold is not None else [])
        for value in values:
            if not 0.0 < _finite("threshold", value) <= 1.0:
                raise KwspotError(f"threshold must be in (0, 1], got {value}")


@dataclass(frozen=True)
class Detection:
    keyword: str
    time_s: float  # estimated centre of the keyword: end_s - latency_s - HALF_KEYWORD_S
    score: float  # smoothed posterior when it fired
    end_s: float = 0.0  # stream time when it fired: the end of the window that crossed


class EventLogic:
    """Smoothed scores (one row per hop) -> events; see the module docstring."""

    def __init__(self, thresholds: np.ndarray, refractory_s: float) -> None:
        self.thresholds = np.asarray(thresholds, np.float64)
        self.refractory_s = refractory_s
        self.reset()

    def reset(self) -> None:
        self.armed = True
        self.last_end = -math.inf

    def step_best(self, best: int, best_ratio: float, end_s: float) -> int | None:
        """One hop, given the keyword whose score is highest relative to its threshold (the
        detector and a replay compute these for all hops of a track at once); returns the
        index of the keyword that fired, if any."""
        above = best_ratio >= 1.0
        if not self.armed:
            # (a small tolerance: float hop times must not stretch a refractory by one hop)
            if not above and end_s - self.last_end >= self.refractory_s - 1e-6:
                self.armed = True
            return None
        if not above:
            return None
        self.armed = False
        self.last_end = end_s
        return best

    def run(self, smoothed: np.ndarray, ends: np.ndarray) -> list[tuple[int, int]]:
        """Hops (n, K) of a score track, in order -> (keyword index, hop index) of each event.
        The per-hop comparison is done for all hops at once; only the state machine loops."""
        ratios = smoothed / self.thresholds
        best = ratios.argmax(axis=1) if len(ratios) else np.zeros(0, int)
        best_ratios = ratios[np.arange(len(ratios)), best]
        out = []
        for i, (b, ratio, end_s) in enumerate(zip(best.tolist(), best_ratios.tolist(),
                                                  ends.tolist(), strict=True)):
            fired = self.step_best(b, ratio, end_s)
            if fired is not None:
                out.append((fired, i))
        return out


class Detector:
    """``Detector(model).push(chunk) -> [Detection, ...]`` for one stream.

    ``model``: an exported .onnx or .tflite path, a loaded model, or None for the shipped one.
    ``push`` takes 1-D float audio in [-1, 1] or int16 PCM at the model's rate.
    """

    def __init__(self, model: str | Path | KeywordModel | None = None,
                 config: DetectorConfig | None = None,
                 keywords: Sequence[str] | None = None) -> None:
        self.model: KeywordModel = load_keyword_model(model) \
            if model is None or isinstance(model, str | Path) else model
        config = config or DetectorConfig()
        rate = self.model.sample_rate
        stream = getattr(self.model, "stream", None)
        if config.hop_ms is None and stream is not None:  # exactly its output step
            self.hop = stream.hop_samples
            config = replace(config, hop_ms=self.hop / rate * 1000)
        else:
            if config.hop_ms is None:
                config = replace(config, hop_ms=default_hop_ms(self.model))
            self.hop = max(1, round(config.hop_ms * rate / 1000))
        self.config = config
        self.window = self.model.window_samples
        self.smooth_windows = max(1, round(self.config.smooth_ms / self.config.hop_ms))
        labels = self.model.labels
        chosen = list(keywords) if keywords else [x for x in labels if x not in (SILENCE, UNKNOWN)]
        missing = [k for k in chosen if k not in labels]
        if missing:
            raise KwspotError(f"model cannot spot {missing}; its labels are {labels}")
        self.keywords = chosen
        stray = sorted(set(self.config.thresholds) - set(labels))
        if stray:
            raise KwspotError(f"thresholds for {stray}, which the model does not know")
        self.keyword_index = np.array([labels.index(k) for k in chosen])
        self.thresholds = np.array([self._threshold(k) for k in chosen])
        self.latency_s = self._calibrated_latency()
        self.scorer = StreamScorer(self.model, self.hop)
        self.logic = EventLogic(self.thresholds, self.config.refractory_ms / 1000)
        self.reset()

    def _threshold(self, keyword: str) -> float:
        cfg = self.config
        if keyword in cfg.thresholds:
            return float(cfg.thresholds[keyword])
        if cfg.threshold is not None:
            return cfg.threshold
        return self.model.thresholds.get(keyword, DEFAULT_THRESHOLD)

    def _calibrated_latency(self) -> float:
        """How long after a keyword's end an event fires: the card's calibrated median when
        the detector runs as it was measured (the card's thresholds, the same hop and
        smoothing; a lower threshold fires earlier), else the smoothing lag."""
        card = getattr(self.model, "card", None) or {}
        calibration = card.get("calibration") if isinstance(card, dict) else None
        overridden = self.config.threshold is not None or bool(self.config.thresholds)
        if isinstance(calibration, dict) and not overridden:
            latency = calibration.get("latency_s")
            settings = calibration.get("detector") or {}
            same = all(isinstance(settings.get(k), int | float) and
                       abs(float(settings[k]) - float(getattr(self.config, k))) < 1e-6
                       for k in ("hop_ms", "smooth_ms"))
            if isinstance(latency, int | float) and not isinstance(latency, bool) and \
                    math.isfinite(latency) and same:
                return float(latency)
        return self.lag_s

    def reset(self) -> None:
        """Start a new stream."""
        self.scorer.reset()
        self.logic.reset()
        # the last smooth_windows - 1 hops' keyword posteriors (fewer at the stream's start)
        self.recent = np.zeros((0, len(self.keywords)), np.float64)
        self.flushed = False

    @property
    def lag_s(self) -> float:
        """How far the smoothed score lags the newest window (half the averaging span)."""
        return (self.smooth_windows - 1) * self.hop / 2 / self.model.sample_rate

    def score_track(self, chunk: Any, sample_rate: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Push audio; returns (end times in s, smoothed keyword scores (n, K)) of new hops."""
        ends, windows = self.take(chunk, sample_rate)
        return self.accept(ends, self.scorer.score(windows))

    def take(self, chunk: Any, sample_rate: int | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
        """First half of ``score_track``: push audio, return (end times in s, unscored windows)
        of the hops it completed. Score the windows (``scorer.score``, or batched with other
        streams' windows), then hand the posteriors to ``accept`` in the same order."""
        audio = as_audio(chunk, sample_rate, self.model.sample_rate)
        if self.flushed:
            raise KwspotError("the stream was flushed; call reset() to start a new one")
        windows = self.scorer.take(audio)
        first = self.scorer.hops_done - len(windows) + 1
        ends = (np.arange(first, self.scorer.hops_done + 1) * self.hop
                / self.model.sample_rate)
        return ends, windows

    def accept(self, ends: np.ndarray, posteriors: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """Second half of ``score_track``: posteriors of the windows ``take`` returned ->
        (end times, smoothed keyword scores)."""
        if not len(posteriors):
            return ends, np.zeros((0, len(self.keywords)), np.float32)
        # each hop's mean over the last smooth_windows hops (all hops so far, at the start)
        rows = np.concatenate([self.recent, posteriors[:, self.keyword_index]])
        sums = np.concatenate([np.zeros((1, rows.shape[1])), np.cumsum(rows, axis=0)])
        last = np.arange(len(self.recent), len(rows)) + 1  # one past each new hop's row
        first = np.maximum(0, last - self.smooth_windows)
        smoothed = (sums[last] - sums[first]) / (last - first)[:, None]
        self.recent = rows[max(0, len(rows) - (self.smooth_windows - 1)):] \
            if self.smooth_windows > 1 else rows[:0]
        return ends, smoothed.astype(np.float32)

    def events(self, ends: np.ndarray, smoothed: np.ndarray) -> list[Detection]:
        """Run the event logic over (part of) a score track."""
        return [Detection(self.keywords[k],
                          max(0.0, float(ends[i]) - self.latency_s - HALF_KEYWORD_S),
                          float(smoothed[i, k]), float(ends[i]))
                for k, i in self.logic.run(smoothed, ends)]

    def push(self, chunk: Any, sample_rate: int | None = None) -> list[Detection]:
        """Feed audio of any length; returns the keywords that fired."""
        return self.events(*self.score_track(chunk, sample_rate))

    def flush_track(self) -> tuple[np.ndarray, np.ndarray]:
        """End of stream: one window of silence lets a final keyword reach its threshold.
        Returns that last part of the score track; the stream then needs ``reset()``."""
        ends, windows = self.take_flush()
        return self.accept(ends, self.scorer.score(windows))

    def take_flush(self, tail: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``flush_track``'s first half (see ``take``): the stream's last audio (``tail``,
        e.g. a resampler's), then one window of silence, taken at once."""
        silence = silence_for(self.model, self.window)
        taken = self.take(silence if tail is None or not len(tail) else
                          np.concatenate([as_audio(tail, None, self.model.sample_rate),
                                          silence]))
        self.flushed = True
        return taken

    def flush(self) -> list[Detection]:
        return self.events(*self.flush_track())


def as_audio(chunk: Any, sample_rate: int | None, model_rate: int) -> np.ndarray:
    """Validate one chunk: 1-D float in [-1, 1] or int16 PCM (scaled); anything else is a
    ``KwspotError``, never a silent reinterpretation. Checked before any state changes."""
    if sample_rate is not None and sample_rate != model_rate:
        raise KwspotError(f"audio at {sample_rate} Hz, but the model needs {model_rate} Hz: "
                          "resample first (kwspot.audio.resample)")
    if isinstance(chunk, list | tuple):
        chunk = np.asarray(chunk)
    if not isinstance(chunk, np.ndarray):
        raise KwspotError(f"audio must be a 1-D numpy array, got {type(chunk).__name__}")
    if chunk.ndim != 1:
        raise KwspotError(f"audio must be 1-D mono, got shape {chunk.shape}; "
                          "mix channels down first")
    if chunk.dtype == np.int16:
        return chunk.astype(np.float32) / INT16_SCALE
    if chunk.dtype.kind != "f":
        raise KwspotError(f"audio must be float in [-1, 1] or int16 PCM, got dtype {chunk.dtype}")
    if len(chunk) == 0:
        return np.zeros(0, np.float32)
    if not np.isfinite(chunk).all():
        raise KwspotError("audio holds NaN or infinite samples; chunk ignored")
    peak = float(np.abs(chunk).max())
    if peak > 1.0:
        raise KwspotError(f"float audio must lie in [-1, 1], got a peak of {peak:.3g}; "
                          "scale it (int16 PCM may be passed as int16)")
    return chunk.astype(np.float32, copy=False)


def detect_audio(audio: np.ndarray, model: KeywordModel | str | Path | None = None,
                 cfg: DetectorConfig | None = None, keywords: Sequence[str] | None = None,
                 chunk_ms: float = 10_000.0) -> list[Detection]:
    """Run a fresh detector over a whole recording, in chunks as a stream would."""
    detector = Detector(model, cfg, keywords)
    step = max(1, round(chunk_ms * detector.model.sample_rate / 1000))
    return detect_blocks((audio[i : i + step] for i in range(0, len(audio), step)), detector)


def iter_detections(blocks: Iterable[np.ndarray], detector: Detector) -> Iterator[Detection]:
    """A stream, block by block, through a fresh (or reset) detector: each event as soon as
    the block that completes it has been pushed (a live pipe prints as it goes)."""
    for block in blocks:
        yield from detector.push(block)
    yield from detector.flush()


def detect_blocks(blocks: Iterable[np.ndarray], detector: Detector) -> list[Detection]:
    """A whole stream, block by block, through a fresh (or reset) detector."""
    return list(iter_detections(blocks, detector))
