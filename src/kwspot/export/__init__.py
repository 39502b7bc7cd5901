"""Export: a trained classifier -> a deployable model file with its card, checked against
PyTorch before anything is kept.

- ``onnx``: ONNX (float32, or int8 via ``quantize``: ONNX Runtime static QDQ).
- ``tflite``: TFLite through litert-torch (float32, or int8 via PT2E), run with ai-edge-litert.
- ``card``: the model card; ``parity``: the check audio and the comparison with PyTorch;
  ``calibration``: the logged training clips int8 is calibrated on.
"""

from kwspot.export.card import card_path, model_card
from kwspot.export.onnx import NETWORK_SUFFIX, export_module, export_onnx
from kwspot.export.parity import PARITY_TOLERANCE, compare_to_torch, parity_clips

__all__ = ["NETWORK_SUFFIX", "PARITY_TOLERANCE", "card_path", "compare_to_torch",
           "export_module", "export_onnx", "model_card", "parity_clips"]
