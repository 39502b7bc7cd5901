"""Measured latency of a model's network on this machine: features in, logits out, ONNX
Runtime on one thread, median over many single-example runs, as the TC-ResNet paper timed
its table (TFLite on one phone core). Each network is timed as ``kwspot export`` writes it
(temporal convolutions as (1 x k) 2-D ones, ``models.layout``). Weights do not change the
time, so a freshly built network is timed once per model (shared by its seeds); all models
in one run, taking turns."""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from kwspot.fileio import atomic_write_text

LATENCY_FILE = "latency.json"


ROUNDS = 10  # each model's runs are split into this many blocks, models taking turns
LAYOUT = "as exported: temporal convolutions as (1 x k) 2-D ones"  # a cache of 1-D timings
# (before 2026-12-07) is not reused


def _sessions(models: list[str], labels: int, folder: Path) -> dict[str, tuple[Any, dict]]:
    """A one-thread ONNX Runtime session and an input for each model's freshly built
    network (weights do not change the time)."""
    import torch

    from kwspot.export import export_module
    from kwspot.models import build_model
    from kwspot.models.layout import for_onnx
    from kwspot.runtime.model import onnx_session

    out = {}
    for name in models:
        shape = _shape(name)
        torch.manual_seed(0)
        network = build_model(name, shape[1], labels, frames=shape[2]).eval()
        example = torch.randn(shape)
        path = folder / f"{name}.onnx"
        export_module(for_onnx(network), example, path, "features", "logits")  # as exported
        session = onnx_session(path, 1)
        out[name] = (session, {session.get_inputs()[0].name: example.numpy()})
    return out


def time_taking_turns(models: list[str], runs: int, warmup: int, labels: int,
                      rounds: int = ROUNDS) -> dict[str, dict[str, Any]]:
    """Median and p90 ms per model, its freshly built network timed as exported
    (``time_sessions``)."""
    with tempfile.TemporaryDirectory() as tmp:
        timings = time_sessions(_sessions(models, labels, Path(tmp)), runs, warmup, rounds)
    return {name: {**timing, "input": list(_shape(name))} for name, timing in timings.items()}


def time_sessions(sessions: dict[str, tuple[Any, dict]], runs: int, warmup: int,
                  rounds: int = ROUNDS) -> dict[str, dict[str, float]]:
    """Median and p90 ms of single runs per (session, feed), the sessions taking turns in
    ``rounds`` blocks (the order rotating each round), so a slow spell of a shared machine
    falls on all of them alike rather than on whichever was being timed then."""
    names = list(sessions)
    for session, feed in sessions.values():
        for _ in range(warmup):
            session.run(None, feed)
    samples: dict[str, list[float]] = {m: [] for m in names}
    per_round = [runs // rounds + (1 if r < runs % rounds else 0) for r in range(rounds)]
    for r, count in enumerate(per_round):
        for name in names[r % len(names):] + names[: r % len(names)]:
            session, feed = sessions[name]
            for _ in range(count):
                start = time.perf_counter_ns()
                session.run(None, feed)
                samples[name].append((time.perf_counter_ns() - start) / 1e6)
    return {name: {"median_ms": float(np.median(times)),
                   "p90_ms": float(np.percentile(times, 90))}
            for name, times in samples.items()}


def _shape(model_name: str) -> tuple[int, int, int]:
    from kwspot.training.recipes import recipe_for

    features = recipe_for(model_name).features
    return (1, features.num_channels, features.num_frames)


def measure_latency(models: list[str], results_dir: str | Path, runs: int = 1000,
                    warmup: int = 100, labels: int = 12, again: bool = False) -> dict[str, Any]:
    """Every model of ``models`` timed in this one process, taking turns. Kept in
    ``latency.json``; measured again (all of them, so the figures stay comparable) when a
    model is missing, ``runs`` changed, or ``again``."""
    out = Path(results_dir) / LATENCY_FILE
    if out.is_file() and not again:
        old = json.loads(out.read_text())
        if set(models) <= set(old["models"]) and old["runs"] == runs \
                and old.get("rounds") == ROUNDS and old.get("layout") == LAYOUT:  # same way
            return old
        models = sorted(set(models) | set(old["models"]))
    record = {"engine": "onnxruntime (CPU), features in, logits out", "threads": 1,
              "runs": runs, "warmup": warmup,
              "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, "
                         f"{os.cpu_count()} cores",
              "rounds": ROUNDS, "layout": LAYOUT,
              "models": time_taking_turns(list(models), runs, warmup, labels)}
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(record, indent=1) + "\n")
    return record
