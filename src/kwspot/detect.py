"""Keyword detection over audio of any length: a 1 s window slides by ``hop``, posteriors are
smoothed over ``smooth`` of windows, and a keyword fires for each run of windows whose smoothed
score stays above the threshold. The run is reported when it ends (or after one window length,
to bound latency) at the score-weighted centre of its windows: the first window to cross the
threshold has only just heard the word, so its centre would be ~0.5 s early. After a
detection, nothing fires again within ``refractory`` of it.

``StreamingDetector.push(chunk)`` is causal and keeps its state explicitly, so the same object
serves files (pushed in chunks), a microphone or a network stream; one detector per stream.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from kwspot.data import SILENCE, UNKNOWN
from kwspot.errors import KwspotError
from kwspot.runtime import OnnxKeywordModel


@dataclass(frozen=True)
class DetectorConfig:
    threshold: float = 0.8
    hop_ms: float = 100.0
    smooth_ms: float = 300.0
    refractory_ms: float = 1000.0

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise KwspotError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.hop_ms <= 0 or self.smooth_ms < 0 or self.refractory_ms < 0:
            raise KwspotError("hop must be > 0; smoothing and refractory must be >= 0")


@dataclass(frozen=True)
class Detection:
    keyword: str
    time_s: float  # estimated centre of the keyword in the stream
    score: float  # smoothed posterior when it fired


class StreamingDetector:
    def __init__(self, model: OnnxKeywordModel, cfg: DetectorConfig | None = None,
                 keywords: list[str] | None = None) -> None:
        self.model = model
        self.cfg = cfg or DetectorConfig()
        rate = model.sample_rate
        self.hop = max(1, round(self.cfg.hop_ms * rate / 1000))
        self.window = model.window_samples
        self.smooth_windows = max(1, round(self.cfg.smooth_ms / self.cfg.hop_ms))
        ignored = {SILENCE, UNKNOWN}
        chosen = keywords or [label for label in model.labels if label not in ignored]
        unknown = [k for k in chosen if k not in model.labels]
        if unknown:
            raise KwspotError(f"model cannot spot {unknown}; its labels are {model.labels}")
        self.keyword_index = np.array([model.labels.index(k) for k in chosen])
        self.keywords = chosen
        self.reset()

    def reset(self) -> None:
        """Start a new stream: the buffer begins as one window of silence."""
        self.buffer = np.zeros(self.window, np.float32)
        self.pending = np.zeros(0, np.float32)
        self.history: deque[np.ndarray] = deque(maxlen=self.smooth_windows)
        self.samples_seen = 0  # real samples pushed so far
        self.last_event_time = -np.inf  # seconds
        self._end_run()

    def _end_run(self) -> None:
        self.run_keyword: int | None = None
        self.run_windows = 0
        self.run_weight = 0.0
        self.run_weighted_time = 0.0
        self.run_max = 0.0

    def push(self, chunk: np.ndarray) -> list[Detection]:
        """Feed mono float32 audio at the model's rate; returns keywords that fired."""
        chunk = np.asarray(chunk, np.float32).reshape(-1)
        self.pending = np.concatenate([self.pending, chunk])
        events = []
        while len(self.pending) >= self.hop:
            step, self.pending = self.pending[: self.hop], self.pending[self.hop :]
            self.buffer = np.concatenate([self.buffer[self.hop :], step])
            self.samples_seen += self.hop
            event = self._score()
            if event:
                events.append(event)
        return events

    def flush(self) -> list[Detection]:
        """End of stream: a window of silence lets a final keyword finish its run."""
        events = self.push(np.zeros(self.window + self.hop - len(self.pending), np.float32))
        event = self._emit()
        return events + ([event] if event else [])

    def _score(self) -> Detection | None:
        posteriors = self.model.posteriors(self.buffer)[0]
        self.history.append(posteriors[self.keyword_index])
        smoothed = np.mean(self.history, axis=0)
        # centre of the current window, less half the smoothing span (the average lags)
        lag = (len(self.history) - 1) * self.hop / 2
        centre = (self.samples_seen - self.window / 2 - lag) / self.model.sample_rate
        best = int(np.argmax(smoothed))
        above = smoothed[best] >= self.cfg.threshold
        event = None
        if self.run_keyword is not None and not (above and best == self.run_keyword):
            event = self._emit()
        if above and self.run_keyword is None:
            if centre - self.last_event_time < self.cfg.refractory_ms / 1000:
                return event
            self.run_keyword = best
        if above and best == self.run_keyword:
            weight = float(smoothed[best])
            self.run_windows += 1
            self.run_weight += weight
            self.run_weighted_time += weight * centre
            self.run_max = max(self.run_max, weight)
            if self.run_windows * self.hop >= self.window:  # bound the latency
                event = self._emit()
        return event

    def _emit(self) -> Detection | None:
        if self.run_keyword is None:
            return None
        time_s = max(0.0, self.run_weighted_time / self.run_weight)
        event = Detection(self.keywords[self.run_keyword], time_s, self.run_max)
        self.last_event_time = time_s
        self._end_run()
        return event


def detect_audio(audio: np.ndarray, model: OnnxKeywordModel, cfg: DetectorConfig | None = None,
                 keywords: list[str] | None = None, chunk_ms: float = 500.0) -> list[Detection]:
    """Run a fresh streaming detector over a whole recording, in chunks as a stream would."""
    detector = StreamingDetector(model, cfg, keywords)
    chunk = max(1, round(chunk_ms * model.sample_rate / 1000))
    events: list[Detection] = []
    for start in range(0, len(audio), chunk):
        events.extend(detector.push(audio[start : start + chunk]))
    events.extend(detector.flush())
    return events
