"""kwspot: keyword spotting from research to production.

The runtime is importable without torch::

    import kwspot
    detector = kwspot.Detector()                  # the shipped model, or Detector("m.onnx")
    for event in detector.push(chunk):            # 16 kHz mono float32 in [-1, 1] or int16
        print(event.keyword, event.time_s, event.score)
"""

from __future__ import annotations

import os
from typing import Any

# No network request at run time: ONNX Runtime (>= 1.2x on Linux) starts its telemetry when it
# is imported, before ``disable_telemetry_events()`` can run; its environment switch stops it at
# the source (and the "Failed to persist telemetry device ID" line on a read-only home).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.2.0"

_RUNTIME = ("Detection", "Detector", "DetectorConfig", "OnnxKeywordModel", "detect_audio",
            "pretrained_path")
__all__ = ["__version__", *_RUNTIME]


def __getattr__(name: str) -> Any:
    """Load the runtime on first use, so ``import kwspot`` stays cheap (no onnxruntime)."""
    if name in _RUNTIME:
        from kwspot import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module 'kwspot' has no attribute {name!r}")
