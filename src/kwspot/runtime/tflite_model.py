"""Running an exported TFLite model with ai-edge-litert and numpy only (no torch), the same
interface as ``OnnxKeywordModel``, so ``detect``, ``eval``, ``verify-export`` and the
streaming engine take a ``.tflite`` file as they take an ``.onnx`` one.

TFLite shapes are static (batch 1): a batch of windows runs one window per call. The card is
the side file ``<name>.json`` or, when it is missing, the copy stored in the model's metadata
(``kwspot_card``). Needs ``pip install 'kwspot[tflite]'``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kwspot.errors import KwspotError
from kwspot.runtime.model import CARD_KEY, ExportedModel, card_path, softmax

INSTALL = "pip install 'kwspot[tflite]'"


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """litert, its converter and torchao print warnings and progress lines to stdout, stderr
    and the C-level fd 2; a user of kwspot should see kwspot's lines only."""
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


def interpreter(path: str | Path, threads: int = 1) -> Any:
    """An ai-edge-litert interpreter for ``path``, tensors allocated."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise KwspotError(f"running TFLite models needs ai-edge-litert: {INSTALL}") from None
    try:
        with quiet():
            runner = Interpreter(model_path=str(path), num_threads=max(1, threads))
            runner.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise KwspotError(f"{path}: cannot load TFLite model ({exc})") from None
    return runner


class Runner:
    """One interpreter's batch-1 call, its tensor details looked up once (asking for them
    costs ~15 us a call, a tenth of a whole TC-ResNet8). A fully int8 graph (int8 input and
    outputs, as the converter makes the network graph) is fed and read through its tensors'
    scale and zero point, so callers always see float. An interpreter is not thread-safe
    (its input and output tensors are shared), so calls are serialized."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.lock = threading.Lock()
        detail = runner.get_input_details()[0]
        self.input_index = detail["index"]
        self.input_quant = detail["quantization"] if detail["dtype"] == np.int8 else None
        self.outputs = [(o["index"], o["quantization"] if o["dtype"] == np.int8 else None)
                        for o in runner.get_output_details()]

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        if self.input_quant is not None:
            scale, zero = self.input_quant
            x = np.clip(np.round(x / scale) + zero, -128, 127).astype(np.int8)
        with self.lock:
            self.runner.set_tensor(self.input_index, np.ascontiguousarray(x))
            self.runner.invoke()
            raw = [self.runner.get_tensor(index) for index, _ in self.outputs]
        outputs = []
        for value, (_, quant) in zip(raw, self.outputs, strict=True):
            if quant is not None:
                value = (value.astype(np.float32) - quant[1]) * quant[0]
            outputs.append(value)
        return outputs


def posteriors_index(card: dict[str, Any]) -> int:
    """Which output of the audio graph holds the posteriors: the card's ``outputs`` say, as
    litert-torch does not keep output names (0 when a card does not say)."""
    return next((int(o["index"]) for o in card.get("outputs") or []
                 if o.get("is") == "posteriors"), 0)


def read_metadata(path: str | Path) -> dict[str, bytes]:
    """The named metadata buffers of a TFLite file (flatbuffer ``Model.metadata``)."""
    from ai_edge_litert import schema_py_generated as schema

    data = Path(path).read_bytes()
    try:
        model = schema.Model.GetRootAs(data, 0)
        entries = {}
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            entries[entry.Name().decode()] = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    except Exception as exc:  # a damaged flatbuffer raises anything from struct to Index
        raise KwspotError(f"{path}: not a readable TFLite file ({exc})") from None
    return entries


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def with_metadata(data: bytes, key: str, value: bytes) -> bytes:
    """``data`` (a TFLite file) with metadata ``key`` set to ``value`` (replaced if present)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(value, dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = key, len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name not in (key, key.encode())]
    model.metadata.append(entry)
    builder = flatbuffers.Builder(len(data) + len(value) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


class TfliteKeywordModel(ExportedModel):
    """(N, window_samples) float32 audio -> (N, classes) posteriors; and, with the export's
    network graph, (N, C, T) features -> (N, classes) posteriors."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        path = Path(path)
        if not path.is_file():
            raise KwspotError(f"{path}: model file not found")
        self.runner = Runner(interpreter(path, threads))
        self._load_card(path, lambda: _text(read_metadata(path).get(CARD_KEY)))
        shape = list(self.runner.runner.get_input_details()[0]["shape"])
        if shape != [1, self.window_samples]:
            raise KwspotError(f"{path}: the model takes input {shape}, the card says "
                              f"[1, {self.window_samples}]")
        self.posteriors_index = posteriors_index(self.card)
        outputs = self.runner.runner.get_output_details()
        if self.posteriors_index >= len(outputs):
            raise KwspotError(f"{card_path(path)}: the card's posteriors output "
                              f"{self.posteriors_index} is not among the model's "
                              f"{len(outputs)} outputs")
        self._check_output_count(int(outputs[self.posteriors_index]["shape"][-1]))
        network_path = self._network_path()
        self.network: Runner | None = None
        if network_path is not None:
            self.network = Runner(interpreter(network_path, threads))

    def posteriors(self, windows: np.ndarray) -> np.ndarray:
        windows = np.ascontiguousarray(windows, dtype=np.float32)
        if windows.ndim == 1:
            windows = windows[None]
        return np.concatenate([self.runner(w[None])[self.posteriors_index]
                               for w in windows]) if len(windows) else \
            np.zeros((0, len(self.labels)), np.float32)

    def network_posteriors(self, features: np.ndarray) -> np.ndarray:
        """(N, C, T) features -> (N, classes) posteriors (softmax of the network's logits)."""
        if self.network is None:
            raise KwspotError(f"{self.path}: this export has no network graph")
        features = np.ascontiguousarray(features, dtype=np.float32)
        return softmax(np.concatenate([self.network(f[None])[0] for f in features]))
