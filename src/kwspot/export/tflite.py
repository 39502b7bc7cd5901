"""TFLite export through litert-torch (no TensorFlow), run with ai-edge-litert: the same two
graphs as the ONNX export — raw audio -> (posteriors, logits) with the matmul front end
inside, and features -> logits for the streaming engine — at batch 1 (TFLite shapes are
static). Each is checked against PyTorch before anything is kept. Needs the optional extra:
``pip install 'kwspot[tflite]'``.

float32, or int8: PyTorch 2 Export post-training quantization (litert-torch's PT2E quantizer:
int8 weights per channel, int8 activations, histogram calibration) of the network — every
convolution, residual add, pooling and the classifier — calibrated on logged training clips.
The front end (framing, FFT products, mel, log, DCT) stays float in the audio-in graph: a log
compresses a ~100 dB range that 8 bits cannot hold. The card is written beside the model
(``<name>.json``) and embedded in the file's metadata (``kwspot_card``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from kwspot.classifier import KeywordClassifier, audio_in_graph
from kwspot.errors import KwspotError
from kwspot.export.card import check_precision, model_card, staged_export
from kwspot.export.parity import INT8_TOLERANCE, PARITY_TOLERANCE, compare_to_torch
from kwspot.fileio import atomic_path, write_card
from kwspot.runtime.model import network_path as network_file
from kwspot.runtime.tflite_model import INSTALL, Runner, interpreter, posteriors_index, quiet

TFLITE_SUFFIX = ".tflite"
FRONTEND_TYPE = "kwspot.features.MatmulFrontend"  # how torch.export names the module's type


def _litert_torch() -> Any:
    try:
        with quiet():
            import litert_torch
    except ImportError:
        raise KwspotError(f"TFLite export needs the optional extra: {INSTALL}") from None
    return litert_torch


def convert(module: torch.nn.Module, example: torch.Tensor, path: Path,
            calibration: torch.Tensor | None = None) -> None:
    """``module`` at the shape of ``example`` (batch 1) -> a TFLite file, atomically: float32,
    or int8 when ``calibration`` inputs are given (any ``MatmulFrontend`` inside stays float)."""
    try:
        _convert(module.eval(), example, path, calibration)
    except KwspotError:
        raise
    except Exception as exc:  # the converter raises many types; its message says what failed
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        precision = "float32" if calibration is None else "int8"
        raise KwspotError(f"TFLite conversion failed ({precision}): {first[:300]}") from None


def _convert(module: torch.nn.Module, example: torch.Tensor, path: Path,
             calibration: torch.Tensor | None) -> None:
    litert_torch = _litert_torch()
    with quiet(), atomic_path(path) as tmp:
        if calibration is None:
            litert_torch.convert(module, (example,)).export(str(tmp))
            return
        from litert_torch.quantize.pt2e_quantizer import (
            PT2EQuantizer,
            get_symmetric_quantization_config,
        )
        from litert_torch.quantize.quant_config import QuantConfig
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        config = get_symmetric_quantization_config(is_per_channel=True)
        quantizer = PT2EQuantizer().set_global(config).set_module_type(
            FRONTEND_TYPE, None)  # type: ignore[arg-type]  # the stack records type names
        graph = torch.export.export(module, (example,)).module()
        graph = prepare_pt2e(graph, quantizer)
        with torch.no_grad():
            for x in calibration:
                graph(x[None])
        graph = convert_pt2e(graph, fold_quantize=False)
        litert_torch.convert(graph, (example,), quant_config=QuantConfig(
            pt2e_quantizer=quantizer)).export(str(tmp))


def parity(model: KeywordClassifier, full: Runner, net: Runner, audio: np.ndarray,
           index: int, name: str) -> float:
    """``export.compare_to_torch`` for the two TFLite graphs (``index``: the audio graph's
    posteriors output), clip by clip (batch 1)."""

    def run_audio(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        outs = [full(clip[None]) for clip in x]
        posteriors = np.concatenate([o[index] for o in outs])
        logits = np.concatenate([o[1 - index] for o in outs])
        return posteriors, logits

    return compare_to_torch(model, audio, run_audio,
                            lambda f: np.concatenate([net(x[None])[0] for x in f]), name)


def _outputs(full: Runner, clip: np.ndarray, path: Path) -> list[dict[str, Any]]:
    """Which output is which: litert-torch does not keep output names, so the card says
    (posteriors sum to one)."""
    names = [o["name"] for o in full.runner.get_output_details()]
    first = full(clip)
    order = ["posteriors" if abs(float(o.sum()) - 1.0) < 1e-3 else "logits" for o in first]
    if sorted(order) != ["logits", "posteriors"]:
        raise KwspotError(f"{path}: cannot tell its posteriors from its logits")
    return [{"index": i, "name": n, "is": what,
             "meaning": "softmax posteriors in label order" if what == "posteriors"
             else "logits (pre-softmax) in label order"}
            for i, (n, what) in enumerate(zip(names, order, strict=True))]


def export_tflite(model: KeywordClassifier, out_path: str | Path, check_audio: np.ndarray,
                  record: dict[str, Any] | None = None, tolerance: float = PARITY_TOLERANCE,
                  precision: str = "float32",
                  calibration: tuple[np.ndarray, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Write ``<name>.tflite``, ``<name>.net.tflite`` and the card; returns the card with the
    measured parity. The float graphs are checked first (within ``tolerance``); int8 is then
    converted from the same module, calibrated on ``calibration`` (clips, and the log of how
    they were drawn), and checked within ``INT8_TOLERANCE``. Nothing is kept on a failure."""
    check_precision(precision, calibration)
    out_path = Path(out_path)
    if out_path.suffix.lower() != TFLITE_SUFFIX:
        raise KwspotError(f"{out_path}: TFLite models end in {TFLITE_SUFFIX}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # litert-torch converts channels-last weights wrongly (Res models train that way)
    model.to(memory_format=torch.contiguous_format).eval()
    audio = np.ascontiguousarray(check_audio, dtype=np.float32)
    card = model_card(model, record, network_file(out_path).name, fmt="tflite")
    with staged_export(out_path) as (model_path, network_path):
        _export_checked(model, card, model_path, network_path, audio, tolerance, precision,
                        calibration)
    write_card(card, out_path)
    return card


def _check(model: KeywordClassifier, card: dict[str, Any], out_path: Path,
           network_path: Path, audio: np.ndarray) -> float:
    """Map the audio graph's outputs into the card, then measure parity (one interpreter
    per graph)."""
    full, net = Runner(interpreter(out_path)), Runner(interpreter(network_path))
    card["outputs"] = _outputs(full, audio[:1], out_path)
    return parity(model, full, net, audio, posteriors_index(card), str(out_path))


def _export_checked(model: KeywordClassifier, card: dict[str, Any], out_path: Path,
                    network_path: Path, audio: np.ndarray, tolerance: float, precision: str,
                    calibration: tuple[np.ndarray, dict[str, Any]] | None) -> None:
    """Both graphs written to the given (staged) paths and checked; results into ``card``."""
    example = torch.from_numpy(audio[:1])
    export_model = audio_in_graph(model, runtime="tflite").eval()
    convert(export_model, example, out_path)
    with torch.no_grad():
        features = model.frontend(example)
    convert(model.network, features, network_path)
    max_diff = _check(model, card, out_path, network_path, audio)
    card["parity"] = {"max_abs_diff": max_diff, "clips": len(audio), "tolerance": tolerance,
                      "runtime": "ai-edge-litert", "precision": "float32"}
    if max_diff > tolerance:
        raise KwspotError(f"TFLite and PyTorch disagree by {max_diff:.2e} (> {tolerance:.0e}); "
                          "nothing was written")
    card["precision"] = precision
    if precision == "int8" and calibration is not None:
        clips, log = calibration
        calib_audio = torch.from_numpy(np.ascontiguousarray(clips, dtype=np.float32))
        with torch.no_grad():
            calib_features = model.frontend(calib_audio)
        convert(export_model, example, out_path, calibration=calib_audio)
        convert(model.network, features, network_path, calibration=calib_features)
        int8_diff = _check(model, card, out_path, network_path, audio)
        card["quantization"] = {
            "method": "litert-torch PT2E static: int8 weights per channel (symmetric), int8 "
                      "activations, histogram calibration; front end (framing, FFT products, "
                      "mel, log, DCT) float in the audio-in graph",
            "calibration": log, "max_abs_diff_from_float": int8_diff}
        if int8_diff > INT8_TOLERANCE:
            raise KwspotError(f"int8 posteriors differ from PyTorch by {int8_diff:.2e} "
                              f"(> {INT8_TOLERANCE}); nothing was written")
