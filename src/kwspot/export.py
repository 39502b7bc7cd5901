"""ONNX export: raw 16 kHz audio in, class posteriors out, features inside the graph.

Beside ``<name>.onnx`` goes ``<name>.json``, the model card (labels, sample rate, window,
feature settings, how it was trained). The same card is stored as ONNX metadata. Export fails
if ONNX Runtime and PyTorch disagree by more than ``tolerance`` on the check audio.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import io
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from kwspot import __version__
from kwspot.classifier import KeywordClassifier, PosteriorModel
from kwspot.errors import KwspotError

INPUT_NAME = "audio"
OUTPUT_NAME = "posteriors"
NETWORK_SUFFIX = ".net.onnx"
NETWORK_INPUT = "features"
NETWORK_OUTPUT = "logits"
PARITY_TOLERANCE = 1e-4


def export_module(module: nn.Module, example: torch.Tensor, path: Path, input_name: str,
                  output_name: str) -> None:
    """Export with a dynamic batch dimension; quiet unless it fails."""
    module.eval()
    batch = torch.export.Dim("batch", min=1, max=4096)
    first_arg = next(iter(inspect.signature(module.forward).parameters))
    sink = io.StringIO()
    torch_log = logging.getLogger("torch")
    level = torch_log.level
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink):
        warnings.simplefilter("ignore")
        torch_log.setLevel(logging.ERROR)
        try:
            program = torch.onnx.export(
                module, (example,), input_names=[input_name], output_names=[output_name],
                dynamic_shapes={first_arg: {0: batch}}, dynamo=True, opset_version=18,
                verbose=False,
            )
        except Exception as exc:  # the exporter raises many types; show its message
            raise KwspotError(f"ONNX export failed: {exc}\n{sink.getvalue()[-2000:]}") from exc
        finally:
            torch_log.setLevel(level)
    program.save(str(path))


def parity_clips(path: str | Path | None, count: int, samples: int, seed: int = 0) -> np.ndarray:
    """Audio for the export parity check: real clips from a folder if given, else band-limited
    noise bursts (a check on real audio is the stronger one)."""
    from kwspot.audio import fit_length, load_audio
    from kwspot.datasets.folder import AUDIO_SUFFIXES

    if path:
        files = sorted(p for p in Path(path).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise KwspotError(f"{path}: no audio files for the parity check")
        step = max(1, len(files) // count)
        return np.stack([fit_length(load_audio(f), samples) for f in files[::step][:count]])
    rng = np.random.default_rng(seed)
    envelope = np.hanning(samples)[None]
    return (rng.standard_normal((count, samples)) * 0.1 * envelope).astype(np.float32)


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
        "features": dataclasses.asdict(features),
        "training": {
            "step": record.get("step"),
            "val_accuracy": record.get("val_accuracy"),
            "config": record.get("config"),
        },
    }


def export_onnx(model: KeywordClassifier, out_path: str | Path, check_audio: np.ndarray,
                record: dict[str, Any] | None = None,
                tolerance: float = PARITY_TOLERANCE) -> dict[str, Any]:
    """Write the ONNX model and card; returns the card with the measured parity added."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    wrapper = PosteriorModel(model).eval()
    example = torch.from_numpy(check_audio[:2].astype(np.float32))
    export_module(wrapper, example, out_path, INPUT_NAME, OUTPUT_NAME)

    network_path = out_path.with_name(out_path.stem + NETWORK_SUFFIX)
    features = model.frontend(example)
    export_module(model.network.eval(), features, network_path, NETWORK_INPUT, NETWORK_OUTPUT)

    card = model_card(model, record)
    card["network"] = {"file": network_path.name, "input": NETWORK_INPUT,
                       "shape": ["batch", model.features.num_channels, model.features.num_frames],
                       "output": NETWORK_OUTPUT, "meaning": "logits in label order; the "
                       "runtime computes the features (same front end) and the softmax"}
    max_diff = max(parity(wrapper, out_path, check_audio),
                   network_parity(model, network_path, check_audio))
    card["parity"] = {"max_abs_diff": max_diff, "clips": len(check_audio), "tolerance": tolerance}
    if max_diff > tolerance:
        out_path.unlink(missing_ok=True)
        network_path.unlink(missing_ok=True)
        raise KwspotError(
            f"ONNX Runtime and PyTorch disagree by {max_diff:.2e} (> {tolerance:.0e}); "
            "nothing was written")
    proto = onnx.load(str(out_path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "kwspot_card", json.dumps(card)
    tmp = out_path.with_name(out_path.name + ".tmp")
    try:
        onnx.save(proto, str(tmp))
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    write_card(card, card_path(out_path))
    return card


def write_card(card: dict[str, Any], path: str | Path) -> None:
    """Temp file + rename: a kill mid-write never leaves a half card beside a model."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(card, indent=2) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def card_path(onnx_path: str | Path) -> Path:
    return Path(onnx_path).with_suffix(".json")


@torch.no_grad()
def network_parity(model: KeywordClassifier, network_path: Path, audio: np.ndarray) -> float:
    """The runtime's path: numpy features + the network graph + softmax, against PyTorch."""
    from kwspot.runtime.frontend import NumpyFrontend

    session = ort.InferenceSession(str(network_path), providers=["CPUExecutionProvider"])
    expected = torch.softmax(model(torch.from_numpy(audio.astype(np.float32))), -1).numpy()
    frontend = NumpyFrontend(model.features)
    features = np.stack([frontend.frames(a) for a in audio])
    logits = session.run(None, {session.get_inputs()[0].name: features})[0]
    e = np.exp(logits - logits.max(1, keepdims=True))
    return float(np.abs(expected - e / e.sum(1, keepdims=True)).max())


@torch.no_grad()
def parity(module: nn.Module, onnx_path: Path, audio: np.ndarray) -> float:
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    expected = module(torch.from_numpy(audio.astype(np.float32))).numpy()
    got = session.run(None, {session.get_inputs()[0].name: audio.astype(np.float32)})[0]
    return float(np.abs(expected - got).max())
