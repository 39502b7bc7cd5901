"""The model card every export carries: what the model is, how to feed it, what it was
trained on and how it measured. Written beside the model (``<name>.json``) and embedded in the
model file (ONNX metadata, TFLite metadata ``kwspot_card``); the runtime reads the side file
first and the embedded copy when the side file is missing.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from kwspot import __version__
from kwspot.classifier import KeywordClassifier

INPUT_NAME = "audio"
OUTPUT_NAME = "posteriors"
LOGITS_NAME = "logits"
CARD_METADATA_KEY = "kwspot_card"


def model_card(model: KeywordClassifier, record: dict[str, Any] | None = None) -> dict[str, Any]:
    record = record or {}
    features = model.features
    return {
        "format": "kwspot-onnx-v1",
        "kwspot_version": __version__,
        "model": model.model_name,
        "labels": model.labels,
        "sample_rate": features.sample_rate,
        "window_samples": features.clip_samples,
        "window_seconds": features.clip_samples / features.sample_rate,
        "input": {"name": INPUT_NAME, "shape": ["batch", features.clip_samples],
                  "dtype": "float32", "range": [-1.0, 1.0]},
        "output": {"name": OUTPUT_NAME, "shape": ["batch", len(model.labels)],
                   "meaning": "softmax posteriors in label order"},
        "outputs": [
            {"name": OUTPUT_NAME, "shape": ["batch", len(model.labels)],
             "meaning": "softmax posteriors in label order"},
            {"name": LOGITS_NAME, "shape": ["batch", len(model.labels)],
             "meaning": "logits (pre-softmax) in label order"}],
        "features": dataclasses.asdict(features),
        "training": {
            "step": record.get("step"),
            "val_accuracy": record.get("val_accuracy"),
            "config": record.get("config"),
        },
    }


def card_path(onnx_path: str | Path) -> Path:
    return Path(onnx_path).with_suffix(".json")
