"""What always-on detection costs with a wake-word export (speech embedding + head) against the
shipped TC-ResNet8, side by side in one run, one thread each: CPU time per second of audio
through the same streaming engine (`kwspot.Detector`, 80 ms chunks, each model's own hop).

    python benchmarks/wakeword_cost.py runs/wakeword-real/happy/happy.onnx --repeats 3 \
        --json docs/results/wakeword-cost.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from kwspot.runtime.detector import Detector
from kwspot.runtime.model import load_keyword_model


def cpu_per_audio_second(model_path: str, audio: np.ndarray, chunk: int, repeats: int) -> dict:
    detector = Detector(load_keyword_model(model_path, threads=1))
    detector.push(audio[: 16000 * 3])  # warm up sessions and buffers
    times = []
    for _ in range(repeats):
        detector.reset()
        start = time.process_time()
        for i in range(0, len(audio), chunk):
            detector.push(audio[i : i + chunk])
        times.append(time.process_time() - start)
    seconds = len(audio) / 16000
    hops = len(audio) // detector.hop
    median = float(np.median(times))
    return {"model": model_path, "hop_ms": detector.config.hop_ms,
            "cpu_ms_per_audio_s": round(1000 * median / seconds, 2),
            "cpu_us_per_hop": round(1e6 * median / hops, 1),
            "real_time_factor": round(seconds / median, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wakeword_model")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the result here")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    audio = (0.05 * rng.standard_normal(int(args.seconds * 16000))).astype(np.float32)
    chunk = 1280  # 80 ms
    rows = [cpu_per_audio_second(m, audio, chunk, args.repeats)
            for m in ("shipped", args.wakeword_model)]
    rows[1]["ratio_to_shipped"] = round(rows[1]["cpu_ms_per_audio_s"]
                                        / rows[0]["cpu_ms_per_audio_s"], 1)
    out = json.dumps({"audio_seconds": args.seconds, "repeats": args.repeats, "chunk_ms": 80,
                      "threads": 1, "measured": time.strftime("%Y-%m-%d"), "rows": rows},
                     indent=1)
    print(out)
    if args.json:
        with open(args.json, "w") as f:
            f.write(out + "\n")


if __name__ == "__main__":
    main()
