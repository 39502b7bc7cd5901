"""Stream metrics: what a product sees. A detector runs over long recordings with ground truth
(``kwspot streams``); its events are matched to the truth while the threshold is swept.

What counts:

- a **hit**: an event of keyword k that fires between the start of a true k and
  ``tolerance_s`` after its end (each true keyword matches at most one event);
- a **false alarm**: every other event, including an event of the wrong keyword during a true
  one (which is then also a miss, unless the right keyword fires too);
- **FRR** = misses / true keywords; **FA/h** = false alarms / hours of all streams scored;
- **latency** = event time (the end of the window that fired) minus the true keyword's end.

Each stream is scored once (posteriors, smoothed); the detector's own ``EventLogic`` is then
replayed over the score track for every threshold, so the sweep runs exactly the code that
``kwspot detect`` runs, at every threshold.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kwspot.audio import iter_audio_blocks
from kwspot.datasets.streams import read_truth
from kwspot.errors import KwspotError
from kwspot.runtime.detector import Detector, DetectorConfig, EventLogic
from kwspot.runtime.model import KeywordModel

TOLERANCE_S = 1.0
FA_TARGETS = (0.5, 1.0, 5.0)


def threshold_grid() -> np.ndarray:
    """Thresholds swept: coarse up to 0.95, then ~10 a decade of 1 - threshold down to 1e-7
    (where low FA/h lives for a confident model; float32 posteriors still step there)."""
    coarse = np.linspace(0.05, 0.95, 19)
    fine = 1.0 - np.logspace(-1.3, -7, 58)  # 0.95 .. 0.9999999
    return np.unique(np.round(np.concatenate([coarse, fine]), 9))


@dataclass
class ScoredStream:
    name: str
    duration_s: float
    ends: np.ndarray  # (n,) seconds: end of each hop's window
    smoothed: np.ndarray  # (n, K) smoothed keyword scores
    events: list[dict[str, Any]]  # truth: keyword, start, end
    negatives: list[dict[str, Any]]  # what the non-keyword speech was


@dataclass
class Outcome:
    """Events at one setting of thresholds, matched against the truth."""

    keywords: list[str]
    hours: float
    hits: Counter = field(default_factory=Counter)  # per keyword
    truths: Counter = field(default_factory=Counter)
    false_alarms: Counter = field(default_factory=Counter)  # per keyword fired
    fa_sources: Counter = field(default_factory=Counter)  # what the audio was
    latencies: list[float] = field(default_factory=list)
    keyword_latencies: dict[str, list[float]] = field(default_factory=dict)
    by_snr: dict[str, list[int]] = field(default_factory=dict)  # "5-10 dB": [hits, truths]
    false_alarm_list: list[dict[str, Any]] = field(default_factory=list)

    def frr(self, keyword: str | None = None) -> float:
        truths = self.truths[keyword] if keyword else sum(self.truths.values())
        hits = self.hits[keyword] if keyword else sum(self.hits.values())
        return 1.0 - hits / truths if truths else float("nan")

    def fa_per_hour(self, keyword: str | None = None) -> float:
        count = self.false_alarms[keyword] if keyword else sum(self.false_alarms.values())
        return count / self.hours

    def precision(self, keyword: str | None = None) -> float:
        """Hits over all events fired (of ``keyword``, or of every keyword); 1 if none fired."""
        if keyword is None:
            hits, wrong = sum(self.hits.values()), sum(self.false_alarms.values())
        else:
            hits, wrong = self.hits[keyword], self.false_alarms[keyword]
        return hits / (hits + wrong) if hits + wrong else 1.0

    def summary(self) -> dict[str, Any]:
        return {
            "frr": self.frr(), "recall": 1.0 - self.frr(), "fa_per_hour": self.fa_per_hour(),
            "precision": self.precision(), "hits": sum(self.hits.values()),
            "keywords_in_truth": sum(self.truths.values()),
            "false_alarms": sum(self.false_alarms.values()),
            "latency_s": _median_p90(self.latencies),
            "per_keyword": {k: {"frr": self.frr(k), "fa_per_hour": self.fa_per_hour(k),
                                "hits": self.hits[k], "truth": self.truths[k],
                                "false_alarms": self.false_alarms[k],
                                "precision": self.precision(k),
                                "latency_s": _median_p90(self.keyword_latencies.get(k, []))}
                            for k in self.keywords},
            "false_alarms_by_source": dict(self.fa_sources.most_common()),
            "frr_by_snr": {band: {"frr": 1 - h / n, "truth": n}
                           for band, (h, n) in sorted(self.by_snr.items(),
                                                      key=_band_order)},
        }


def _median_p90(values: Sequence[float]) -> dict[str, float | None]:
    """Median and 90th percentile of detection latencies (None when nothing was hit)."""
    lat = np.asarray(values, np.float64)
    return {"median": float(np.median(lat)) if len(lat) else None,
            "p90": float(np.percentile(lat, 90)) if len(lat) else None}


def check_tolerance(tolerance_s: float) -> None:
    if not 0 <= tolerance_s < float("inf"):
        raise KwspotError(f"--tolerance-s must be a number >= 0, got {tolerance_s}")


def score_stream(detector: Detector, stream: str | Path) -> ScoredStream:
    """Push one stream through a fresh detector (block by block) and keep its score track."""
    wav, truth = read_truth(stream)
    detector.reset()
    ends, tracks = [], []
    for block in iter_audio_blocks(wav, detector.model.sample_rate):
        e, s = detector.score_track(block)
        ends.append(e)
        tracks.append(s)
    e, s = detector.flush_track()
    ends.append(e)
    tracks.append(s)
    return ScoredStream(Path(wav).stem, float(truth["duration_s"]), np.concatenate(ends),
                        np.concatenate(tracks), truth["events"], truth.get("negatives", []))


def replay(stream: ScoredStream, thresholds: np.ndarray, refractory_s: float
           ) -> list[tuple[int, float]]:
    """The detector's event logic over a whole score track: (keyword index, end time)."""
    logic = EventLogic(thresholds, refractory_s)
    return [(k, float(stream.ends[i])) for k, i in logic.run(stream.smoothed, stream.ends)]


def _band_order(item: tuple[str, Any]) -> float:
    return float(item[0].split("-")[0]) if item[0][0].isdigit() else float("inf")


def _band(outcome: Outcome, event: dict[str, Any], width: float = 5.0) -> list[int]:
    """The [hits, truths] counter of the event's SNR band (all in one band if unknown)."""
    snr = event.get("snr_db")
    if snr is None:
        key = "unknown"
    else:
        low = width * (float(snr) // width)
        key = f"{low:g}-{low + width:g} dB"
    return outcome.by_snr.setdefault(key, [0, 0])


def _source(stream: ScoredStream, end_s: float, window_s: float) -> str:
    """What the window that fired mostly held: a keyword, a negative kind, or noise."""
    start = end_s - window_s
    best, best_overlap = "noise/silence", 0.0
    for seg in stream.negatives:
        overlap = min(end_s, seg["end"]) - max(start, seg["start"])
        if overlap > best_overlap:
            best, best_overlap = seg["kind"], overlap
    for seg in stream.events:
        overlap = min(end_s, seg["end"]) - max(start, seg["start"])
        if overlap > best_overlap:
            best, best_overlap = f"keyword {seg['keyword']}", overlap
    return best


def match(streams: Sequence[ScoredStream], keywords: list[str], thresholds: np.ndarray,
          refractory_s: float, tolerance_s: float = TOLERANCE_S, window_s: float = 1.0,
          keep_false_alarms: bool = False) -> Outcome:
    hours = sum(s.duration_s for s in streams) / 3600
    outcome = Outcome(keywords, hours)
    for stream in streams:
        tally(outcome, stream, replay(stream, thresholds, refractory_s), tolerance_s,
              window_s, keep_false_alarms)
    return outcome


def tally(outcome: Outcome, stream: ScoredStream, events: Sequence[tuple[int, float]],
          tolerance_s: float = TOLERANCE_S, window_s: float = 1.0,
          keep_false_alarms: bool = False) -> None:
    """Count one stream's detections ``(keyword index, end time)`` into ``outcome``: a hit
    ends inside [start, end + tolerance] of an unmatched true keyword of its kind, anything
    else is a false alarm. Any spotter's events go through this, kwspot's or another's."""
    keywords = outcome.keywords
    # only the keywords being spotted count as truth
    truth = sorted((e for e in stream.events if e["keyword"] in keywords),
                   key=lambda e: e["start"])
    starts = np.array([e["start"] for e in truth])
    longest = max((e["end"] - e["start"] for e in truth), default=0.0) + tolerance_s
    matched = np.zeros(len(truth), bool)
    for e in truth:
        outcome.truths[e["keyword"]] += 1
        _band(outcome, e)[1] += 1
    for index, end_s in events:
        keyword = keywords[index]
        # of the unmatched true keywords this event can match, the one whose window for
        # matching closes first (so a later event can still take the later one)
        hit = None
        first = int(np.searchsorted(starts, end_s - longest, side="left"))
        last = int(np.searchsorted(starts, end_s, side="right"))
        for j in range(first, last):
            e = truth[j]
            if (not matched[j] and e["keyword"] == keyword
                    and e["start"] <= end_s <= e["end"] + tolerance_s
                    and (hit is None or e["end"] < truth[hit]["end"])):
                hit = j
        if hit is not None:
            matched[hit] = True
            outcome.hits[keyword] += 1
            outcome.latencies.append(end_s - truth[hit]["end"])
            outcome.keyword_latencies.setdefault(keyword, []).append(end_s - truth[hit]["end"])
            _band(outcome, truth[hit])[0] += 1
        else:
            outcome.false_alarms[keyword] += 1
            source = _source(stream, end_s, window_s)
            outcome.fa_sources[source] += 1
            if keep_false_alarms:
                outcome.false_alarm_list.append({"stream": stream.name, "keyword": keyword,
                                                 "time_s": round(end_s, 2),
                                                 "source": source})


def operating_points(rows: list[dict[str, Any]], keywords: list[str],
                     targets: Sequence[float] = FA_TARGETS) -> dict[str, Any]:
    """Lowest FRR with FA/h <= target, overall and per keyword, over the swept thresholds."""
    def best(frr_fa: list[tuple[float, float, float]], target: float) -> dict[str, Any] | None:
        ok = [(frr, fa, t) for frr, fa, t in frr_fa if fa <= target]
        if not ok:
            return None
        frr, fa, t = min(ok, key=lambda x: (x[0], x[1]))
        return {"frr": frr, "fa_per_hour": fa, "threshold": t}

    out: dict[str, Any] = {"overall": {}, "per_keyword": {k: {} for k in keywords}}
    for target in targets:
        key = f"{target:g}"
        out["overall"][key] = best([(r["frr"], r["fa_per_hour"], r["threshold"])
                                    for r in rows], target)
        for k in keywords:
            out["per_keyword"][k][key] = best(
                [(r["per_keyword"][k]["frr"], r["per_keyword"][k]["fa_per_hour"],
                  r["threshold"]) for r in rows], target)
    return out


def sweep(scored: Sequence[ScoredStream], keywords: list[str], refractory_s: float,
          tolerance_s: float, window_s: float, grid: np.ndarray | None = None
          ) -> list[dict[str, Any]]:
    """One shared threshold swept over the grid: each row the outcome's summary at it."""
    rows = []
    for t in threshold_grid() if grid is None else grid:
        outcome = match(scored, keywords, np.full(len(keywords), t), refractory_s,
                        tolerance_s, window_s)
        rows.append({"threshold": float(t), **outcome.summary()})
    return rows


def evaluate_streams(model: str | Path | KeywordModel | None, streams: Sequence[str | Path],
                     config: DetectorConfig | None = None, keywords: Sequence[str] | None = None,
                     tolerance_s: float = TOLERANCE_S,
                     grid: np.ndarray | None = None) -> dict[str, Any]:
    """Score every stream once, sweep one threshold over all keywords, and also report the
    detector at its own thresholds (the card's calibrated ones, or ``config``'s)."""
    if not streams:
        raise KwspotError("give at least one stream (made by `kwspot streams`)")
    check_tolerance(tolerance_s)
    detector = Detector(model, config, keywords)
    scored = [score_stream(detector, s) for s in streams]
    refractory = detector.config.refractory_ms / 1000
    window_s = detector.window / detector.model.sample_rate
    rows = sweep(scored, detector.keywords, refractory, tolerance_s, window_s, grid)
    at_default = match(scored, detector.keywords, detector.thresholds, refractory, tolerance_s,
                       window_s, keep_false_alarms=True)
    return {
        "model": str(detector.model.path),
        "streams": [{"name": s.name, "path": str(p), "duration_s": s.duration_s,
                     "keywords": len(s.events)} for s, p in zip(scored, streams, strict=True)],
        "hours": sum(s.duration_s for s in scored) / 3600,
        "keywords": detector.keywords,
        "tolerance_s": tolerance_s,
        "detector": {"hop_ms": detector.config.hop_ms, "smooth_ms": detector.config.smooth_ms,
                     "refractory_ms": detector.config.refractory_ms},
        "operating_points": operating_points(rows, detector.keywords),
        "default_thresholds": {
            "thresholds": dict(zip(detector.keywords, map(float, detector.thresholds),
                                   strict=True)),
            **at_default.summary(), "false_alarm_list": at_default.false_alarm_list[:500]},
        "sweep": rows,
    }
