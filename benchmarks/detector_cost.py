"""What always-on detection costs per model: CPU seconds per second of audio through
``kwspot.Detector`` (the engine `kwspot detect` runs), one thread, all models on the same audio
in one run, side by side. Each model is run ``--repeats`` times; the median is reported.

    python benchmarks/detector_cost.py shipped runs/emb12/emb12-w4-m3.onnx \
        --audio runs/streams/validation/keywords.wav --seconds 600 --json OUT.json
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from kwspot.audio import load_audio  # noqa: E402
from kwspot.runtime import Detector  # noqa: E402
from kwspot.runtime.model import load_keyword_model  # noqa: E402


def cpu_per_audio_second(model_path: str, audio: np.ndarray, rate: int, block_s: float
                         ) -> float:
    detector = Detector(load_keyword_model(model_path, threads=1))
    block = round(block_s * rate)
    started = time.process_time()
    for i in range(0, len(audio), block):
        detector.push(audio[i : i + block])
    detector.flush()
    return (time.process_time() - started) / (len(audio) / rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--audio", required=True, help="a 16 kHz recording (a stream)")
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--block-s", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    audio = load_audio(args.audio, 16000)[: round(args.seconds * 16000)]
    rows = []
    for path in args.models:
        runs = [cpu_per_audio_second(path, audio, 16000, args.block_s)
                for _ in range(args.repeats)]
        cost = float(np.median(runs))
        rows.append({"model": path, "cpu_s_per_audio_s": round(cost, 5),
                     "x_real_time": round(1 / cost), "runs": [round(r, 5) for r in runs]})
        print(f"{path}: {1000 * cost:.2f} ms CPU per second of audio "
              f"({1 / cost:.0f}x real time, one thread)", flush=True)
    out = {"audio": args.audio, "seconds": len(audio) / 16000, "block_s": args.block_s,
           "machine": platform.processor() or platform.machine(), "rows": rows,
           "command": " ".join(["python", *sys.argv])}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
