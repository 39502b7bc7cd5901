"""The model card every export carries: what the model is, how to feed it, what it was
trained on and how it measured. Written beside the model (``<name>.json``) and embedded in the
model file (ONNX metadata, TFLite metadata ``kwspot_card``); the runtime reads the side file
first and the embedded copy when the side file is missing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from kwspot import __version__
from kwspot.classifier import KeywordClassifier
from kwspot.errors import KwspotError
from kwspot.runtime.model import EXPORT_SUFFIXES, card_path, network_path

INPUT_NAME = "audio"
OUTPUT_NAME = "posteriors"
LOGITS_NAME = "logits"


@contextlib.contextmanager
def staged_export(out_path: Path, siblings: Sequence[Callable[[Path], Path]] = ()
                  ) -> Iterator[tuple[Path, ...]]:
    """Temporary paths for an export's graphs: ``<name>.partial.<ext>``, its network graph, and
    one per ``siblings`` function (e.g. a wake word's embedding graph), in that order. They
    replace the final files only when the block succeeds; on any failure (a check, the
    converter, Ctrl-C, a full disk) they are removed, so no half export is left and an earlier
    export stays as it was. An export beside another format's export of the same name is
    refused: the two would share one card (``<name>.json``)."""
    for other in EXPORT_SUFFIXES:
        sibling = out_path.with_suffix(other)
        if other != out_path.suffix and sibling.exists():
            raise KwspotError(f"{out_path}: {sibling} is there and its card is "
                              f"{card_path(out_path)}; export to another name, e.g. "
                              f"{out_path.with_name(out_path.stem + '-' + out_path.suffix[1:])}"
                              f"{out_path.suffix}")
    partial = out_path.with_name(f"{out_path.stem}.partial{out_path.suffix}")
    names = (network_path, *siblings)
    staged = (partial, *(name(partial) for name in names))
    try:
        yield staged
        for name, path in zip(names, staged[1:], strict=True):
            os.replace(path, name(out_path))
        os.replace(staged[0], out_path)
    finally:
        for path in staged:
            path.unlink(missing_ok=True)


def check_precision(precision: str, calibration: object | None) -> None:
    """The precisions every format exports; int8 needs its calibration clips."""
    if precision not in ("float32", "int8"):
        raise KwspotError(f"unknown precision {precision!r}; choose float32 or int8")
    if precision == "int8" and calibration is None:
        raise KwspotError("int8 export needs calibration clips")


def network_entry(model: KeywordClassifier, file: str, batch: int | str) -> dict[str, Any]:
    """The card's ``network``: the features-in graph the streaming engine runs."""
    return {"file": file, "input": "features",
            "shape": [batch, model.features.num_channels, model.features.num_frames],
            "output": "logits", "meaning": "logits in label order; the runtime computes the "
            "features (same front end) and the softmax"}


def model_card(model: KeywordClassifier, record: dict[str, Any] | None = None,
               network_file: str | None = None, fmt: str = "onnx") -> dict[str, Any]:
    """The card of an ONNX (dynamic batch, named outputs) or a TFLite export (batch 1; its
    outputs, which the converter leaves unnamed, are identified after conversion)."""
    record = record or {}
    features = model.features
    batch: int | str = "batch" if fmt == "onnx" else 1
    card: dict[str, Any] = {
        "format": "kwspot-onnx-v1" if fmt == "onnx" else "tflite",
        "kwspot_version": __version__,
        "model": model.model_name,
        "labels": model.labels,
        "sample_rate": features.sample_rate,
        "window_samples": features.clip_samples,
        "window_seconds": features.clip_samples / features.sample_rate,
        "input": {"shape": [batch, features.clip_samples], "dtype": "float32",
                  "range": [-1.0, 1.0]},
        "features": dataclasses.asdict(features),
        "training": {
            "step": record.get("step"),
            "val_accuracy": record.get("val_accuracy"),
            "config": record.get("config"),
        },
    }
    if fmt == "onnx":
        card["input"] = {"name": INPUT_NAME, **card["input"]}
        posteriors = {"name": OUTPUT_NAME, "shape": [batch, len(model.labels)],
                      "meaning": "softmax posteriors in label order"}
        card["output"] = posteriors
        card["outputs"] = [posteriors, {"name": LOGITS_NAME,
                                        "shape": [batch, len(model.labels)],
                                        "meaning": "logits (pre-softmax) in label order"}]
    else:
        card["batch"] = batch
    if network_file is not None:
        card["network"] = network_entry(model, network_file, batch)
    return card


CARRIED_FIELDS = ("training_data", "intended_use", "limitations")


def carry_card(card: dict[str, Any], source: dict[str, Any], source_name: str = "the source"
               ) -> dict[str, Any]:
    """A re-export of an already documented model (the shipped one: TFLite, int8) keeps what
    its card documents: the training data and licences, intended use, limitations and the
    calibrated thresholds, so the detector does not fall back to 0.8. The thresholds were
    chosen on the source model's scores; the card says so, and by how much an int8 export's
    posteriors differ from float. The source's metrics stay with the source: they were
    measured on its graph, not on this one."""
    carried = dict(card)
    for key in CARRIED_FIELDS:
        if key in source:
            carried[key] = source[key]
    if "thresholds" in source:
        carried["thresholds"] = dict(source["thresholds"])
        carried["calibration"] = {**source.get("calibration", {}), "carried_from": {
            "model": f"{source_name} ({source.get('model', '?')}, "
                     f"{source.get('precision', 'float32')})",
            "note": "thresholds calibrated on the source model's posteriors; this export's "
                    "posteriors differ from PyTorch by at most "
                    f"{_largest_difference(card):.2g} on the check clips"}}
    if "metrics" in source:
        carried["limitations"] = [*carried.get("limitations", []),
                                  "The stream and clip metrics in the source model's card were "
                                  "measured on that model, not on this export."]
    return carried


def _largest_difference(card: dict[str, Any]) -> float:
    quantization = card.get("quantization") or {}
    return float(quantization.get("max_abs_diff_from_float",
                                  (card.get("parity") or {}).get("max_abs_diff", 0.0)))
