"""Running an exported model: ONNX Runtime only (no torch), so a deployment needs neither
PyTorch nor kwspot's training code. The model card beside the .onnx says how to feed it."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from kwspot.errors import KwspotError

PRETRAINED_NAME = "tc-resnet8-speech-commands"


def pretrained_path() -> Path:
    """The TC-ResNet8 shipped inside the package (trained on speech_commands_lite)."""
    return Path(str(resources.files("kwspot") / "pretrained" / f"{PRETRAINED_NAME}.onnx"))


class OnnxKeywordModel:
    """(N, window_samples) float32 audio -> (N, classes) posteriors."""

    def __init__(self, path: str | Path | None = None, threads: int = 1) -> None:
        path = Path(path) if path else pretrained_path()
        if path.is_dir():
            candidates = sorted(path.glob("*.onnx"))
            if len(candidates) != 1:
                raise KwspotError(
                    f"{path}: expected exactly one .onnx file, found {len(candidates)}")
            path = candidates[0]
        if not path.is_file():
            raise KwspotError(f"{path}: model file not found")
        card_file = path.with_suffix(".json")
        if not card_file.is_file():
            raise KwspotError(f"{path}: model card {card_file.name} not found beside it")
        self.path = path
        self.card: dict[str, Any] = json.loads(card_file.read_text())
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own opaque types
            raise KwspotError(f"{path}: cannot load ONNX model ({exc})") from None
        self.input_name = self.session.get_inputs()[0].name
        self.labels: list[str] = list(self.card["labels"])
        self.sample_rate: int = int(self.card["sample_rate"])
        self.window_samples: int = int(self.card["window_samples"])

    def posteriors(self, windows: np.ndarray) -> np.ndarray:
        windows = np.ascontiguousarray(windows, dtype=np.float32)
        if windows.ndim == 1:
            windows = windows[None]
        return self.session.run(None, {self.input_name: windows})[0]
