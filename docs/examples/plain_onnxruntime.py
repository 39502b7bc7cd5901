"""Run a kwspot export with only numpy, soundfile and onnxruntime (docs/deploy.md)."""
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import soundfile as sf

model, wav = sys.argv[1], sys.argv[2]
card = json.loads(Path(model).with_suffix(".json").read_text())  # labels, rate, window
audio, rate = sf.read(wav, dtype="float32")
assert rate == card["sample_rate"] and audio.ndim == 1, "resample / mix down first"
clip = np.zeros(card["window_samples"], np.float32)  # the model takes exactly one window
clip[: len(audio)] = audio[: len(clip)]
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
posteriors, logits = session.run(None, {"audio": clip[None]})
best = int(posteriors[0].argmax())
print(card["labels"][best], round(float(posteriors[0, best]), 3))
