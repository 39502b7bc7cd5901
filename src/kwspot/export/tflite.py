"""TFLite export through litert-torch (no TensorFlow), run with ai-edge-litert: the same two
graphs as the ONNX export — raw audio -> (posteriors, logits) with the matmul front end
inside, and features -> logits for the streaming engine — at batch 1 (TFLite shapes are
static), float32. Each is checked against PyTorch before anything is kept. Needs the optional
extra: ``pip install 'kwspot[tflite]'``.

The card is written beside the model (``<name>.json``); unlike the ONNX export it is not
embedded in the model file.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kwspot.classifier import ExportModel, KeywordClassifier
from kwspot.errors import KwspotError
from kwspot.export.card import model_card
from kwspot.export.parity import PARITY_TOLERANCE, compare_to_torch
from kwspot.fileio import atomic_path, write_card

TFLITE_SUFFIX = ".tflite"
NETWORK_SUFFIX = ".net.tflite"
INSTALL = "pip install 'kwspot[tflite]'"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """litert-torch, torchao and the converter print warnings and progress lines to stdout,
    stderr and the C-level fd 2; a user of ``kwspot export`` should see kwspot's lines only."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as sink:
            os.dup2(sink.fileno(), 2)
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()):
                warnings.simplefilter("ignore")
                level = logging.root.manager.disable
                logging.disable(logging.WARNING)
                try:
                    yield
                finally:
                    logging.disable(level)
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _litert_torch() -> Any:
    try:
        with _quiet():
            import litert_torch
    except ImportError:
        raise KwspotError(f"TFLite export needs the optional extra: {INSTALL}") from None
    return litert_torch


def interpreter(path: str | Path, threads: int = 1) -> Any:
    """An ai-edge-litert interpreter for ``path``, tensors allocated."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise KwspotError(f"running TFLite models needs ai-edge-litert: {INSTALL}") from None
    with _quiet():
        runner = Interpreter(model_path=str(path), num_threads=threads)
        runner.allocate_tensors()
    return runner


def run(runner: Any, x: np.ndarray) -> list[np.ndarray]:
    """One batch-1 call; outputs in the order the graph declares them."""
    runner.set_tensor(runner.get_input_details()[0]["index"], np.ascontiguousarray(x))
    runner.invoke()
    return [runner.get_tensor(o["index"]) for o in runner.get_output_details()]


def convert(module: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    """``module`` at the shape of ``example`` (batch 1) -> a float TFLite file, atomically."""
    litert_torch = _litert_torch()
    with _quiet(), atomic_path(path) as tmp:
        litert_torch.convert(module.eval(), (example,)).export(str(tmp))


def parity(model: KeywordClassifier, audio_path: Path, network_path: Path,
           audio: np.ndarray, posteriors_index: int) -> float:
    """``export.compare_to_torch`` for the two TFLite graphs, clip by clip (batch 1)."""
    full, net = interpreter(audio_path), interpreter(network_path)

    def run_audio(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        outs = [run(full, clip[None]) for clip in x]
        posteriors = np.concatenate([o[posteriors_index] for o in outs])
        logits = np.concatenate([o[1 - posteriors_index] for o in outs])
        return posteriors, logits

    return compare_to_torch(model, audio, run_audio,
                            lambda f: np.concatenate([run(net, x[None])[0] for x in f]),
                            str(audio_path))


def export_tflite(model: KeywordClassifier, out_path: str | Path, check_audio: np.ndarray,
                  record: dict[str, Any] | None = None, tolerance: float = PARITY_TOLERANCE,
                  precision: str = "float32") -> dict[str, Any]:
    """Write ``<name>.tflite``, ``<name>.net.tflite`` and the card; returns the card with the
    measured parity. Nothing is kept when TFLite and PyTorch disagree beyond ``tolerance``."""
    if precision != "float32":
        raise KwspotError("int8 TFLite export is not built yet: use --format tflite "
                          "--precision float32, or --format onnx --precision int8")
    out_path = Path(out_path)
    if out_path.suffix.lower() != TFLITE_SUFFIX:
        raise KwspotError(f"{out_path}: TFLite models end in {TFLITE_SUFFIX}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    audio = np.ascontiguousarray(check_audio, dtype=np.float32)
    example = torch.from_numpy(audio[:1])
    network_path = out_path.with_name(out_path.stem + NETWORK_SUFFIX)
    convert(ExportModel(model), example, out_path)
    with torch.no_grad():
        features = model.frontend(example)
    convert(model.network, features, network_path)

    card = model_card(model, record)
    card["format"] = "tflite"
    card["batch"] = 1
    card["network"] = {"file": network_path.name, "input": "features",
                       "shape": [1, model.features.num_channels, model.features.num_frames],
                       "output": "logits", "meaning": "logits in label order; the runtime "
                       "computes the features (same front end) and the softmax"}
    names = [o["name"] for o in interpreter(out_path).get_output_details()]
    first = run(interpreter(out_path), audio[:1])
    order = ["posteriors" if abs(float(o.sum()) - 1.0) < 1e-3 else "logits" for o in first]
    if sorted(order) != ["logits", "posteriors"]:
        raise KwspotError(f"{out_path}: cannot tell its posteriors from its logits")
    card["outputs"] = [{"index": i, "name": n, "is": what,
                        "meaning": "softmax posteriors in label order" if what == "posteriors"
                        else "logits (pre-softmax) in label order"}
                       for i, (n, what) in enumerate(zip(names, order, strict=True))]
    max_diff = parity(model, out_path, network_path, audio, order.index("posteriors"))
    card["parity"] = {"max_abs_diff": max_diff, "clips": len(audio), "tolerance": tolerance,
                      "runtime": "ai-edge-litert"}
    if max_diff > tolerance:
        out_path.unlink(missing_ok=True)
        network_path.unlink(missing_ok=True)
        raise KwspotError(f"TFLite and PyTorch disagree by {max_diff:.2e} (> {tolerance:.0e}); "
                          "nothing was written")
    card["precision"] = precision
    write_card(card, out_path)
    return card
