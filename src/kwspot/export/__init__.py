"""Export: a trained classifier -> a deployable model file with its card, checked against
PyTorch before anything is kept.

- ``onnx``: ONNX (float32, or int8 via ``quantize``: ONNX Runtime static QDQ).
- ``tflite``: TFLite through litert-torch (float32, or int8 via PT2E), run with ai-edge-litert.
- ``card``: the model card; ``parity``: the check audio and the comparison with PyTorch;
  ``calibration``: the logged training clips int8 is calibrated on.
"""

from kwspot.export.card import model_card
from kwspot.export.onnx import export_module, export_onnx
from kwspot.export.parity import PARITY_TOLERANCE, parity_clips
from kwspot.runtime.model import card_path, network_path

__all__ = ["PARITY_TOLERANCE", "card_path", "export_module", "export_onnx", "model_card",
           "network_path", "parity_clips"]
