"""How cheap always-on detection is: the streaming engine against re-running the whole 1 s
window every hop, measured side by side in one run on one thread.

    python benchmarks/stream_engine.py [--model M.onnx] [--hours 1] [--rss-hours 1,4]
        [--incremental CAUSAL.onnx] [--json docs/results/stream-engine.json]

Prints and (with --json) writes:
- file throughput: an hour of audio through ``Detector`` in 10 s blocks (features computed
  once per frame, windows scored in batches), as x real time; and the same audio through the
  audio-in graph one window per hop (what `kwspot detect` did before), on a slice, as a ratio;
- where the time goes: features per frame and network per window, on 600 s;
- live cost: microseconds per 100 ms hop when audio arrives in 20 ms chunks (median, p90);
- many streams: 100 detectors fed 20 ms chunks in turn; CPU seconds per second of audio;
- memory: peak RSS of `kwspot detect` on generated 1 h and 4 h WAV files;
- with --incremental (a causal model's export, which has a stream graph): the same file,
  live and many-stream measurements through its incremental graph, and the same model at
  the same hop through the frame-cached engine (its stream graph ignored), side by side.
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")  # one thread, numpy and ONNX Runtime alike

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from kwspot.runtime import Detector, OnnxKeywordModel  # noqa: E402

RATE = 16000


def test_audio(seconds: float, seed: int = 0) -> np.ndarray:
    """Speech-like bursts in noise: the engine's cost does not depend on content, but the
    event logic's does a little, so it is not silence."""
    rng = np.random.default_rng(seed)
    n = round(seconds * RATE)
    audio = (rng.standard_normal(n) * 0.01).astype(np.float32)
    for start in rng.integers(0, max(1, n - RATE), size=int(seconds / 3)):
        burst = rng.standard_normal(RATE // 2) * np.hanning(RATE // 2) * 0.2
        audio[start : start + RATE // 2] += burst.astype(np.float32)
    return np.clip(audio, -1, 1)


def file_throughput(model: OnnxKeywordModel, audio: np.ndarray) -> float:
    detector = Detector(model)
    block = 10 * RATE
    started = time.perf_counter()
    for i in range(0, len(audio), block):
        detector.push(audio[i : i + block])
    detector.flush()
    return time.perf_counter() - started


def window_per_hop(model: OnnxKeywordModel, audio: np.ndarray, hop: int = 1600) -> float:
    """The old way: the audio-in graph on the whole 1 s window, every hop, batch 1."""
    padded = np.concatenate([np.zeros(RATE, np.float32), audio])
    started = time.perf_counter()
    for end in range(hop, len(audio) + 1, hop):
        model.posteriors(padded[end : end + RATE])
    return time.perf_counter() - started


def parts(model: OnnxKeywordModel, seconds: float = 600.0) -> dict[str, float]:
    """Where a file pass spends its time: features per 10 ms frame, network per window."""
    frontend = model.frontend()
    if frontend is None:
        return {}
    audio = test_audio(seconds, seed=2)
    block = 10 * RATE  # as the engine sees a file: 10 s blocks
    started = time.perf_counter()
    frames = np.concatenate([frontend.push(audio[i : i + block])
                             for i in range(0, len(audio), block)], axis=1)
    features_s = time.perf_counter() - started
    hop = round(0.1 * RATE) // frontend.cfg.hop_length
    view = np.lib.stride_tricks.sliding_window_view(frames, frontend.cfg.num_frames, axis=1)
    windows = np.ascontiguousarray(view[:, ::hop].transpose(1, 0, 2))
    started = time.perf_counter()
    for i in range(0, len(windows), 512):
        model.network_posteriors(windows[i : i + 512])
    network_s = time.perf_counter() - started
    return {"audio_seconds": seconds, "features_s": features_s,
            "features_us_per_frame": features_s / frames.shape[1] * 1e6,
            "network_s": network_s, "network_us_per_window": network_s / len(windows) * 1e6}


def live_cost(model: OnnxKeywordModel, seconds: float = 60.0) -> dict[str, float]:
    audio = test_audio(seconds, seed=1)
    detector = Detector(model)
    chunk = RATE // 50
    per_hop = []
    for i in range(0, len(audio), chunk):
        started = time.perf_counter()
        hops_before = detector.scorer.hops_done
        detector.push(audio[i : i + chunk])
        if detector.scorer.hops_done > hops_before:
            per_hop.append(time.perf_counter() - started)
    us = np.array(per_hop) * 1e6
    return {"median_us": float(np.median(us)), "p90_us": float(np.percentile(us, 90)),
            "hops": len(us)}


def many_streams(model: OnnxKeywordModel, streams: int = 100, seconds: float = 20.0
                 ) -> dict[str, float]:
    audio = [test_audio(seconds, seed=s) for s in range(streams)]
    detectors = [Detector(model) for _ in range(streams)]
    chunk = RATE // 50
    started_cpu = time.process_time()
    started = time.perf_counter()
    for i in range(0, round(seconds * RATE), chunk):
        for detector, stream in zip(detectors, audio, strict=True):
            detector.push(stream[i : i + chunk])
    wall = time.perf_counter() - started
    cpu = time.process_time() - started_cpu
    return {"streams": streams, "audio_seconds_each": seconds, "wall_s": wall, "cpu_s": cpu,
            "cpu_per_audio_second": cpu / seconds,
            "real_time_on_one_core": cpu / seconds < 1.0}


def peak_rss(model_path: str | None, hours: float) -> float:
    """Peak RSS (MiB) of `kwspot detect` on a generated WAV of ``hours``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.wav"
        with sf.SoundFile(str(path), "w", RATE, 1, "PCM_16") as fh:
            for _ in range(round(hours * 60)):
                fh.write(test_audio(60.0, seed=7))
        # the child reports its own peak (VmHWM belongs to its own address space):
        # getrusage's maxrss would also count this process's pages, which a forked child
        # shares until it execs
        argv = ["detect", str(path), "--json"] + (["--model", model_path] if model_path else [])
        code = ("import sys\nfrom kwspot.cli import main\n"
                f"main({argv!r})\n"
                "hwm = [x for x in open('/proc/self/status') if x.startswith('VmHWM')][0]\n"
                "print(hwm.split()[1], file=sys.stderr)")
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                             text=True)
    return int(out.stderr.strip().splitlines()[-1]) / 1024


def incremental(path: str, audio: np.ndarray) -> dict[str, object]:
    """A causal export through its stream graph, and the same export at the same hop through
    the frame-cached engine (its stream graph ignored): file, live and many streams."""
    model = OnnxKeywordModel(path, threads=1)
    if model.stream is None:
        raise SystemExit(f"{path}: no stream graph (export a causal model, e.g. "
                         "tc-resnet8-causal)")
    frame_cached = OnnxKeywordModel(path, threads=1)
    frame_cached.stream = None  # the same graphs and hop, run the frame-cached way
    seconds = len(audio) / RATE
    out: dict[str, object] = {"model": str(model.path),
                              "hop_ms": model.stream.hop_samples / RATE * 1000}
    for name, runtime in (("incremental", model), ("frame_cached", frame_cached)):
        file_s = file_throughput(runtime, audio)
        out[name] = {"file": {"audio_hours": seconds / 3600, "seconds": file_s,
                              "x_real_time": seconds / file_s},
                     "live": live_cost(runtime), "many_streams": many_streams(runtime)}
    inc, cached = out["incremental"], out["frame_cached"]
    out["incremental_speedup"] = {
        "file": cached["file"]["seconds"] / inc["file"]["seconds"],
        "live_median": cached["live"]["median_us"] / inc["live"]["median_us"],
        "many_streams": cached["many_streams"]["cpu_s"] / inc["many_streams"]["cpu_s"]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="exported .onnx (default: shipped)")
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--baseline-seconds", type=float, default=120.0,
                        help="audio for the window-per-hop baseline (default 120)")
    parser.add_argument("--rss-hours", default="1,4")
    parser.add_argument("--incremental", default=None, metavar="CAUSAL.onnx",
                        help="also measure a causal export through its stream graph")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    model = OnnxKeywordModel(args.model, threads=1)
    if model.network is None:
        print("note: this export has no network graph; the engine falls back to the audio-in "
              "graph per window")
    audio = test_audio(args.hours * 3600)
    file_s = file_throughput(model, audio)
    slice_ = audio[: round(args.baseline_seconds * RATE)]
    engine_slice_s = file_throughput(model, slice_)
    baseline_s = window_per_hop(model, slice_)
    results = {
        "model": str(model.path),
        "file": {"audio_hours": args.hours, "seconds": file_s,
                 "x_real_time": args.hours * 3600 / file_s},
        "versus_window_per_hop": {"audio_seconds": args.baseline_seconds,
                                  "engine_s": engine_slice_s, "window_per_hop_s": baseline_s,
                                  "speedup": baseline_s / engine_slice_s},
        "parts": parts(model),
        "live": live_cost(model),
        "many_streams": many_streams(model),
        "peak_rss_mib": {h: peak_rss(args.model, float(h)) for h in args.rss_hours.split(",")
                         if h},
    }
    if args.incremental:
        results["incremental"] = incremental(args.incremental, audio)
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
