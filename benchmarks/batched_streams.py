"""Many live streams in step, batched the way `kwspot serve`'s micro-batcher batches them:
every stream takes its 20 ms chunk, then all the windows (frame-cached) or pending frames
(incremental) that the round completed go to the model in one call; each stream then accepts
its own rows. Streams in step finish their hops together, so this is the best case for
batching (a server's clients are not in step). One thread, side by side in one run, for a
causal export run both ways.

    python benchmarks/batched_streams.py CAUSAL.onnx [--streams 100] [--seconds 20]
        [--json FILE]

Prints CPU seconds per second of audio for: each stream scored alone (unbatched), and
batched, for the incremental graph and for the same export run frame-cached.
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")  # one thread, numpy and ONNX Runtime alike

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from kwspot.runtime import Detector, OnnxKeywordModel  # noqa: E402

RATE = 16000
CHUNK = RATE // 50  # 20 ms


def test_audio(seconds: float, seed: int) -> np.ndarray:
    """Noise with speech-like bursts: the cost does not depend on what is said."""
    rng = np.random.default_rng(seed)
    audio = 0.01 * rng.standard_normal(round(seconds * RATE))
    for start in range(0, len(audio) - RATE // 2, 3 * RATE):
        audio[start : start + RATE // 2] += 0.2 * rng.standard_normal(RATE // 2)
    return np.clip(audio, -1, 1).astype(np.float32)


def run(model: OnnxKeywordModel, streams: int, seconds: float, batched: bool) -> float:
    """CPU seconds per second of audio for ``streams`` live streams."""
    audio = [test_audio(seconds, seed=s) for s in range(streams)]
    detectors = [Detector(model) for _ in range(streams)]
    score = detectors[0].scorer.score
    started = time.process_time()
    for i in range(0, round(seconds * RATE), CHUNK):
        taken = [(d, *d.take(x[i : i + CHUNK])) for d, x in zip(detectors, audio, strict=True)]
        ready = [(d, ends, w) for d, ends, w in taken if len(w)]
        if not ready:
            continue
        if not batched:
            outs = [d.scorer.score(w) for d, _, w in ready]
        elif isinstance(ready[0][2], np.ndarray):
            stacked = np.concatenate([w for _, _, w in ready])
            outs = np.split(score(stacked), np.cumsum([len(w) for _, _, w in ready])[:-1])
        else:
            outs = score([w for _, _, w in ready])
        for (d, ends, _), posteriors in zip(ready, outs, strict=True):
            d.events(*d.accept(ends, posteriors))
    return (time.process_time() - started) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a causal export with a stream graph")
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    incremental = OnnxKeywordModel(args.model, threads=1)
    if incremental.stream is None:
        raise SystemExit(f"{args.model}: no stream graph (export a causal model)")
    frame_cached = OnnxKeywordModel(args.model, threads=1)
    frame_cached.stream = None  # the same graphs and hop, run the frame-cached way
    results: dict[str, object] = {"model": args.model, "streams": args.streams,
                                  "audio_seconds_each": args.seconds,
                                  "hop_ms": incremental.stream.hop_samples / RATE * 1000}
    for name, model in (("incremental", incremental), ("frame_cached", frame_cached)):
        results[name] = {mode: run(model, args.streams, args.seconds, mode == "batched")
                         for mode in ("alone", "batched")}
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
