"""Per-keyword thresholds chosen on validation streams, written into the model card.

The false-alarm budget is split evenly over the keywords: keyword k gets the lowest threshold
at which it alone (the others switched off) fires at most ``target / K`` false alarms per hour
on the validation streams, and so does every higher threshold (if even the highest threshold
is over budget, the highest is taken and the calibration report shows the overrun). With
few hours of validation audio that means "no false alarm at all" for small budgets, so
expect the rate on new audio to be higher than the target: report it on test streams, never
on the streams used here.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kwspot.errors import KwspotError
from kwspot.evaluate.streams import (
    TOLERANCE_S,
    check_tolerance,
    match,
    score_stream,
    threshold_grid,
)
from kwspot.fileio import write_card
from kwspot.runtime.detector import Detector, DetectorConfig
from kwspot.runtime.model import card_path

OFF = 2.0  # a threshold no posterior reaches


def calibrate(model: str | Path | None, streams: Sequence[str | Path], target_fa_per_hour: float,
              config: DetectorConfig | None = None, keywords: Sequence[str] | None = None,
              tolerance_s: float = TOLERANCE_S) -> dict[str, Any]:
    """Returns {"thresholds": {keyword: t}, "calibration": what was measured}."""
    if not target_fa_per_hour > 0:
        raise KwspotError("--target-fa-per-hour must be > 0")
    check_tolerance(tolerance_s)
    if not streams:
        raise KwspotError("calibration needs validation streams (made by `kwspot streams "
                          "--split validation`)")
    detector = Detector(model, config, keywords)
    scored = [score_stream(detector, s) for s in streams]
    refractory = detector.config.refractory_ms / 1000
    window_s = detector.window / detector.model.sample_rate
    grid = threshold_grid()
    per_keyword_budget = target_fa_per_hour / len(detector.keywords)
    chosen: dict[str, float] = {}
    measured: dict[str, Any] = {}
    for k, keyword in enumerate(detector.keywords):
        def outcome(t: float, k: int = k):
            thresholds = np.full(len(detector.keywords), OFF)
            thresholds[k] = t
            return match(scored, detector.keywords, thresholds, refractory, tolerance_s,
                         window_s)

        # False alarms mostly fall as the threshold rises, but not strictly (a higher
        # threshold can let the detector re-arm inside a long confusable stretch). Scan down
        # from the top and stop at the first threshold over budget: every threshold kept,
        # and all above it, meet the budget.
        best, result = len(grid) - 1, None
        for i in range(len(grid) - 1, -1, -1):
            trial = outcome(grid[i])
            if result is not None and trial.fa_per_hour(keyword) > per_keyword_budget:
                break
            best, result = i, trial
            if trial.fa_per_hour(keyword) > per_keyword_budget:
                break  # even the highest threshold is over budget
        chosen[keyword] = float(grid[best])
        measured[keyword] = {"threshold": chosen[keyword], "frr": result.frr(keyword),
                             "fa_per_hour": result.fa_per_hour(keyword)}
    together = match(scored, detector.keywords, np.array([chosen[k] for k in detector.keywords]),
                     refractory, tolerance_s, window_s)
    return {
        "thresholds": chosen,
        "calibration": {
            "target_fa_per_hour": target_fa_per_hour,
            "per_keyword_budget": per_keyword_budget,
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
    return write_card(card, onnx_path)
