"""int8 post-training quantization of exported ONNX models (ONNX Runtime static quantization,
QDQ format), calibrated on a logged subset of training clips.

The network's convolutions and classifier are quantized (int8 weights per channel, uint8
activations); the feature front end stays float: a log compresses a ~100 dB range that 8 bits
cannot hold, and the front end is already cheap matrix products. Both graphs of an export are
quantized: ``<name>.onnx`` (audio in) and ``<name>.net.onnx`` (features in, for the engine).
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

QUANTIZED_OPS = ["Conv", "Gemm", "MatMul", "Add", "Relu", "ReduceMean"]


def _frontend_nodes(model: Any) -> list[str]:
    """Names of the nodes that compute the network's input (everything upstream of the
    network's first Conv): the float front end, left out of quantization. The front end
    ends in a Log (and the network has none); its own FFT may be a Conv (``ConvFrontend``),
    so the network's first Conv is the first one after the Log, or the first of all in a
    graph without a front end."""
    graph = model.graph
    after_log: set[str] = set()
    for node in graph.node:  # topological order
        if node.op_type == "Log" or any(i in after_log for i in node.input):
            after_log.update(node.output)
    first_conv = next((n for n in graph.node if n.op_type == "Conv" and
                       (not after_log or n.input[0] in after_log)), None)
    if first_conv is None:
        return []
    producers = {out: node for node in graph.node for out in node.output}
    seen: set[str] = set()
    stack = [first_conv.input[0]]
    while stack:
        node = producers.get(stack.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        stack.extend(node.input)
    return sorted(seen)


class _Reader(CalibrationDataReader):
    """Feeds calibration inputs one at a time."""

    def __init__(self, name: str, inputs: np.ndarray) -> None:
        self.name, self.inputs, self.index = name, inputs, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.index >= len(self.inputs):
            return None
        self.index += 1
        return {self.name: self.inputs[self.index - 1 : self.index]}

    def rewind(self) -> None:
        self.index = 0


def quantize_export(onnx_path: Path, network_path: Path, audio: np.ndarray,
                    features: np.ndarray) -> None:
    """Quantize an export's graphs in place: the audio-in graph on calibration ``audio``, the
    network graph on the same clips' ``features``."""
    quantize_graph(onnx_path, audio)
    quantize_graph(network_path, features)


def quantize_graph(path: Path, inputs: np.ndarray) -> None:
    """Static int8 QDQ quantization of one graph in place, calibrated (min-max) on
    ``inputs``."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from kwspot.fileio import atomic_path

    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(path), str(prepared), skip_symbolic_shape=True)
        model = onnx.load(str(prepared))
        name = model.graph.input[0].name
        with atomic_path(path) as tmp_out:
            quantize_static(str(prepared), str(tmp_out), _Reader(name, inputs),
                            quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=QUANTIZED_OPS,
                            nodes_to_exclude=_frontend_nodes(model))
