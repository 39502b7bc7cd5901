"""Run a kwspot TFLite export with only numpy, soundfile and ai-edge-litert (docs/deploy.md)."""
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from ai_edge_litert.interpreter import Interpreter

model, wav = sys.argv[1], sys.argv[2]
card = json.loads(Path(model).with_suffix(".json").read_text())  # labels, rate, outputs
audio, rate = sf.read(wav, dtype="float32")
assert rate == card["sample_rate"] and audio.ndim == 1, "resample / mix down first"
clip = np.zeros((1, card["window_samples"]), np.float32)  # batch 1, exactly one window
clip[0, : len(audio)] = audio[: clip.shape[1]]
runner = Interpreter(model_path=model, num_threads=1)
runner.allocate_tensors()
runner.set_tensor(runner.get_input_details()[0]["index"], clip)
runner.invoke()
out = {o["is"]: o["index"] for o in card["outputs"]}  # which output is which
posteriors = runner.get_tensor(runner.get_output_details()[out["posteriors"]]["index"])[0]
print(card["labels"][int(posteriors.argmax())], round(float(posteriors.max()), 3))
