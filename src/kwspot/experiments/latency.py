"""Measured latency of a model's network on this machine: features in, logits out, ONNX
Runtime on one thread, median over many single-example runs, as the TC-ResNet paper timed
its table (TFLite on one phone core). Weights do not change the time, so a freshly built
network is timed once per model (shared by its seeds); all models in one run, side by side."""

from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

from kwspot.fileio import atomic_write_text

LATENCY_FILE = "latency.json"


def _time_one(model_name: str, runs: int, warmup: int, labels: int) -> dict[str, Any]:
    import torch

    from kwspot.bench import time_onnx
    from kwspot.export import export_module
    from kwspot.models import build_model
    from kwspot.recipes import recipe_for

    features = recipe_for(model_name).features
    shape = (1, features.num_channels, features.num_frames)
    torch.manual_seed(0)
    network = build_model(model_name, features.num_channels, labels, frames=shape[2]).eval()
    example = torch.randn(shape)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "net.onnx"
        export_module(network, example, path, "features", "logits")
        median, p90 = time_onnx(path, example.numpy(), runs, warmup, threads=1)
    return {"median_ms": median, "p90_ms": p90, "input": list(shape)}


def measure_latency(models: list[str], results_dir: str | Path, runs: int = 1000,
                    warmup: int = 100, labels: int = 12, again: bool = False) -> dict[str, Any]:
    """Every model of ``models`` timed side by side in this one process. Kept in
    ``latency.json``; measured again (all of them, so the figures stay comparable) when a
    model is missing, ``runs`` changed, or ``again``."""
    out = Path(results_dir) / LATENCY_FILE
    if out.is_file() and not again:
        old = json.loads(out.read_text())
        if set(models) <= set(old["models"]) and old["runs"] == runs:
            return old
        models = sorted(set(models) | set(old["models"]))
    record = {"engine": "onnxruntime (CPU), features in, logits out", "threads": 1,
              "runs": runs, "warmup": warmup,
              "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, "
                         f"{os.cpu_count()} cores",
              "models": {m: _time_one(m, runs, warmup, labels) for m in models}}
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(record, indent=1) + "\n")
    return record
