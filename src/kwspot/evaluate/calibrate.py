"""Thresholds chosen on validation streams, written into the model card.

Per keyword (the default): the false-alarm budget is split evenly over the keywords: keyword
k gets the lowest threshold at which it alone (the others switched off) fires at most
``target / K`` false alarms per hour on the validation streams, and so does every higher
threshold (if even the highest threshold is over budget, the highest is taken and the
calibration report shows the overrun). With few hours of validation audio that means "no
false alarm at all" for each keyword at small budgets. ``shared=True`` instead gives every
keyword one threshold: the lowest at which all keywords together stay within the whole
budget (and so does every higher one). It suits a model whose false alarms are few but very
confident and spread over the keywords, where an even split forces every keyword to the top
of the scale. Expect the rate on new audio to be higher than the target either way: report
it on test streams, never on the streams used here.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kwspot.datasets.streams import read_truth
from kwspot.errors import KwspotError
from kwspot.evaluate.streams import (
    TOLERANCE_S,
    check_tolerance,
    match,
    score_stream,
    threshold_grid,
)
from kwspot.export.documentation import UNCALIBRATED
from kwspot.fileio import write_card
from kwspot.runtime.detector import Detector, DetectorConfig
from kwspot.runtime.model import card_path

OFF = 2.0  # a threshold no posterior reaches


def _lowest_within(grid: np.ndarray, fa_per_hour: Any, budget: float) -> int:
    """Index of the lowest grid threshold whose false alarms, and those of every higher one,
    are within ``budget``; the highest when even it is over. False alarms mostly fall as the
    threshold rises, but not strictly (a higher threshold can let the detector re-arm inside
    a long confusable stretch), so scan down from the top and stop at the first one over."""
    best = len(grid) - 1
    for i in range(len(grid) - 1, -1, -1):
        if fa_per_hour(grid[i]) > budget:
            break
        best = i
    return best


def validation_stream(stream: str | Path) -> None:
    """Refuse a stream built from the training or test split: thresholds tuned on training
    audio are optimistic, and tuned on test audio they make every test figure a lie."""
    split = read_truth(stream)[1].get("split")
    if split in ("train", "test"):
        raise KwspotError(f"{stream}: calibrate only on validation streams (this one is "
                          f"{split!r}); make them with `kwspot streams --split validation`")


def calibrate(model: str | Path | None, streams: Sequence[str | Path], target_fa_per_hour: float,
              config: DetectorConfig | None = None, keywords: Sequence[str] | None = None,
              tolerance_s: float = TOLERANCE_S, shared: bool = False) -> dict[str, Any]:
    """Returns {"thresholds": {keyword: t}, "calibration": what was measured}."""
    if not target_fa_per_hour > 0:
        raise KwspotError("--target-fa-per-hour must be > 0")
    check_tolerance(tolerance_s)
    if not streams:
        raise KwspotError("calibration needs validation streams (made by `kwspot streams "
                          "--split validation`)")
    for stream in streams:
        validation_stream(stream)
    detector = Detector(model, config, keywords)
    scored = [score_stream(detector, s) for s in streams]
    refractory = detector.config.refractory_ms / 1000
    window_s = detector.window / detector.model.sample_rate
    grid = threshold_grid()
    count = len(detector.keywords)
    per_keyword_budget = target_fa_per_hour if shared else target_fa_per_hour / count

    def outcome(thresholds: np.ndarray):
        return match(scored, detector.keywords, thresholds, refractory, tolerance_s, window_s)

    chosen: dict[str, float] = {}
    if shared:
        t = float(grid[_lowest_within(grid, lambda t: outcome(np.full(count, t))
                                      .fa_per_hour(), target_fa_per_hour)])
        chosen = dict.fromkeys(detector.keywords, t)
    else:
        for k, keyword in enumerate(detector.keywords):
            def alone(t: float, k: int = k, keyword: str = keyword) -> float:
                thresholds = np.full(count, OFF)
                thresholds[k] = t
                return outcome(thresholds).fa_per_hour(keyword)

            chosen[keyword] = float(grid[_lowest_within(grid, alone, per_keyword_budget)])
    together = outcome(np.array([chosen[k] for k in detector.keywords]))
    measured: dict[str, Any] = {}
    for k, keyword in enumerate(detector.keywords):
        # each keyword alone at its threshold (the others switched off)
        thresholds = np.full(count, OFF)
        thresholds[k] = chosen[keyword]
        result = outcome(thresholds)
        measured[keyword] = {"threshold": chosen[keyword], "frr": result.frr(keyword),
                             "fa_per_hour": result.fa_per_hour(keyword)}
    return {
        "thresholds": chosen,
        "calibration": {
            "target_fa_per_hour": target_fa_per_hour,
            "mode": "shared" if shared else "per keyword",
            "per_keyword_budget": None if shared else per_keyword_budget,
            "streams": [str(s) for s in streams],
            "hours": together.hours,
            "detector": {"hop_ms": detector.config.hop_ms,
                         "smooth_ms": detector.config.smooth_ms,
                         "refractory_ms": detector.config.refractory_ms},
            "per_keyword": measured,
            "all_keywords": {"frr": together.frr(), "fa_per_hour": together.fa_per_hour()},
            # median event time minus keyword end at these thresholds: the detector places
            # an event's keyword with it (``Detection.time_s``)
            "latency_s": together.summary()["latency_s"]["median"],
            "date": dt.date.today().isoformat(),
        },
    }


def write_thresholds(model_path: str | Path, result: dict[str, Any]) -> Path:
    """Put the thresholds and how they were chosen into the model card."""
    onnx_path = Path(model_path)
    card = json.loads(card_path(onnx_path).read_text())
    card["thresholds"] = result["thresholds"]
    card["calibration"] = result["calibration"]
    if "limitations" in card:
        card["limitations"] = [x for x in card["limitations"] if x != UNCALIBRATED]
    return write_card(card, onnx_path)
