"""ONNX export: raw 16 kHz audio in, class posteriors out, features inside the graph.

Beside ``<name>.onnx`` goes ``<name>.json``, the model card (labels, sample rate, window,
feature settings, how it was trained). The same card is stored as ONNX metadata. Export fails
if ONNX Runtime and PyTorch disagree by more than ``tolerance`` on the check audio.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from kwspot.classifier import KeywordClassifier, audio_in_graph
from kwspot.errors import KwspotError
from kwspot.export.card import (
    INPUT_NAME,
    LOGITS_NAME,
    OUTPUT_NAME,
    check_precision,
    model_card,
    staged_export,
)
from kwspot.export.parity import INT8_TOLERANCE, PARITY_TOLERANCE, compare_to_torch
from kwspot.export.stream import export_stream_graph, streamable
from kwspot.fileio import write_card
from kwspot.models.layout import for_onnx
from kwspot.runtime.incremental import stream_graph_path
from kwspot.runtime.model import network_path as network_file
from kwspot.runtime.model import onnx_session


def export_module(module: nn.Module, example: torch.Tensor | tuple[torch.Tensor, ...],
                  path: Path, input_name: str | list[str], output_name: str | list[str],
                  dynamic_shapes: Any = None) -> None:
    """Export (by default with a dynamic batch dimension on the first input); quiet unless it
    fails."""
    module.eval()
    args = example if isinstance(example, tuple) else (example,)
    if dynamic_shapes is None:
        batch = torch.export.Dim("batch", min=1, max=4096)
        first_arg = next(iter(inspect.signature(module.forward).parameters))
        dynamic_shapes = {first_arg: {0: batch}}
    sink = io.StringIO()
    torch_log = logging.getLogger("torch")
    level = torch_log.level
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink):
        warnings.simplefilter("ignore")
        torch_log.setLevel(logging.ERROR)
        try:
            program = torch.onnx.export(
                module, args,
                input_names=[input_name] if isinstance(input_name, str) else input_name,
                output_names=[output_name] if isinstance(output_name, str) else output_name,
                dynamic_shapes=dynamic_shapes, dynamo=True, opset_version=18, verbose=False,
            )
        except Exception as exc:  # the exporter raises many types; show its message
            raise KwspotError(f"ONNX export failed: {exc}\n{sink.getvalue()[-2000:]}") from exc
        finally:
            torch_log.setLevel(level)
    program.save(str(path))


def export_onnx(model: KeywordClassifier, out_path: str | Path, check_audio: np.ndarray,
                record: dict[str, Any] | None = None,
                tolerance: float = PARITY_TOLERANCE, precision: str = "float32",
                calibration: tuple[np.ndarray, dict[str, Any]] | None = None,
                stream_graph: bool = True) -> dict[str, Any]:
    """Write the ONNX model and card; returns the card with the measured parity added.

    ``precision="int8"`` quantizes both graphs after the float parity check, calibrated on
    ``calibration`` (clips, and the log of how they were drawn, which goes in the card). A
    causal model's float export adds its incremental graph (``export.stream``), which the
    streaming engine then runs at the card's hop (one output per total stride);
    ``stream_graph=False`` leaves it out (the engine then scores zero-history windows, as a
    model trained on clips alone was trained; ``--history-ms`` trains the streamed mode)."""
    check_precision(precision, calibration)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    card = model_card(model, record, network_file(out_path).name)
    incremental = stream_graph and streamable(model) and precision == "float32"
    siblings = (stream_graph_path,) if incremental else ()
    with staged_export(out_path, siblings) as (model_path, network_path, *stream_path):
        _export_checked(model, card, model_path, network_path, check_audio, tolerance,
                        precision, calibration)
        if incremental:
            card["stream"] = export_stream_graph(model, stream_path[0], check_audio, tolerance)
            card["stream"]["file"] = stream_graph_path(out_path).name
            features = model.features
            hop = card["stream"]["frames_per_output"] * features.hop_length
            card.setdefault("detector", {})["hop_ms"] = hop / features.sample_rate * 1000
    if not incremental:  # an earlier export's, which this card no longer names
        stream_graph_path(out_path).unlink(missing_ok=True)
    write_card(card, out_path)
    return card


def _export_checked(model: KeywordClassifier, card: dict[str, Any], out_path: Path,
                    network_path: Path, check_audio: np.ndarray, tolerance: float,
                    precision: str, calibration: tuple[np.ndarray, dict[str, Any]] | None
                    ) -> None:
    """Both graphs written to the given (staged) paths and checked; results into ``card``."""
    example = torch.from_numpy(check_audio[:2].astype(np.float32))
    export_module(audio_in_graph(model).eval(), example, out_path, INPUT_NAME,
                  [OUTPUT_NAME, LOGITS_NAME])
    features = model.frontend(example)
    export_module(for_onnx(model.network.eval()), features, network_path, "features", "logits")
    max_diff = parity(model, out_path, network_path, check_audio)
    card["parity"] = {"max_abs_diff": max_diff, "clips": len(check_audio), "tolerance": tolerance}
    if max_diff > tolerance:
        raise KwspotError(
            f"ONNX Runtime and PyTorch disagree by {max_diff:.2e} (> {tolerance:.0e}); "
            "nothing was written")
    card["precision"] = precision
    if precision == "int8" and calibration is not None:
        from kwspot.export.quantize import quantize_export

        clips, log = calibration
        with torch.no_grad():
            calib_features = model.frontend(torch.from_numpy(clips)).numpy()
        quantize_export(out_path, network_path, clips, calib_features)
        int8_diff = parity(model, out_path, network_path, check_audio)
        card["quantization"] = {
            "method": "onnxruntime static, QDQ, int8 weights per channel, uint8 activations, "
                      "min-max calibration; front end (framing, FFT, mel, log, DCT) float",
            "calibration": log, "max_abs_diff_from_float": int8_diff}
        if int8_diff > INT8_TOLERANCE:
            raise KwspotError(f"int8 posteriors differ from PyTorch by {int8_diff:.2e} "
                              f"(> {INT8_TOLERANCE}); nothing was written")


def parity(model: KeywordClassifier, onnx_path: Path, network_path: Path,
           audio: np.ndarray) -> float:
    """``compare_to_torch`` for the two ONNX graphs, in ONNX Runtime."""
    full, net = onnx_session(onnx_path, 0), onnx_session(network_path, 0)

    def run_audio(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        posteriors, logits = full.run(None, {full.get_inputs()[0].name: x})[:2]
        return posteriors, logits

    return compare_to_torch(
        model, audio, run_audio,
        lambda f: net.run(None, {net.get_inputs()[0].name: f})[0], str(onnx_path))
