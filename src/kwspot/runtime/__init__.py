"""Running exported models: ONNX Runtime and numpy only, importable without torch.

    import kwspot
    detector = kwspot.Detector("model.onnx")      # or Detector() for the shipped model
    events = detector.push(chunk)                 # 1-D float [-1, 1] or int16, any length
"""

from kwspot.runtime.detector import Detection, Detector, DetectorConfig, detect_audio
from kwspot.runtime.model import OnnxKeywordModel, load_keyword_model, pretrained_path

__all__ = ["Detection", "Detector", "DetectorConfig", "OnnxKeywordModel", "detect_audio",
           "load_keyword_model", "pretrained_path"]
