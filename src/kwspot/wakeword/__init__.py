"""Custom wake words from typed text (``kwspot wakeword``, extra ``kwspot[wakeword]``): a small
head on Google's frozen speech embedding, trained on synthesized and user-given audio,
calibrated on held-out streams, exported as one ONNX model. See docs/wakeword.md."""
