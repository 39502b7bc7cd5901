"""Latency benchmark: one example at a time on one thread, as a phone or a small server core
runs a keyword spotter. Params and FLOPs are counted from the model; latency is measured,
median and p90 over many runs after warm-up, for PyTorch, ONNX Runtime (float and int8) and,
when ``kwspot[tflite]`` is installed, TFLite (float and int8, ai-edge-litert with its default
XNNPACK delegate), with the feature front end included (raw audio in) and excluded (features in),
side by side in one run. The audio graphs are the ones ``kwspot export`` writes (matmul
front end)."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from kwspot.classifier import KeywordClassifier, PosteriorModel, audio_in_graph
from kwspot.export import export_module
from kwspot.models.layout import for_onnx
from kwspot.profile import count_flops, count_parameters


@dataclass(frozen=True)
class Timing:
    engine: str
    inputs: str  # "audio" (features included) or "features"
    median_ms: float
    p90_ms: float
    runs: int


def time_calls(fn: Callable[[], object], runs: int, warmup: int) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    samples = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter_ns()
        fn()
        samples[i] = time.perf_counter_ns() - start
    return float(np.median(samples) / 1e6), float(np.percentile(samples, 90) / 1e6)


def time_onnx(path: Path, x: np.ndarray, runs: int, warmup: int,
              threads: int = 1) -> tuple[float, float]:
    """Median and p90 ms of one ONNX Runtime call on ``x`` (the graph's only input)."""
    from kwspot.runtime.model import onnx_session

    session = onnx_session(path, threads)
    feed = {session.get_inputs()[0].name: x}
    return time_calls(lambda: session.run(None, feed), runs, warmup)


def tflite_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None
               for m in ("litert_torch", "ai_edge_litert"))


def _tflite_timings(model: KeywordClassifier, audio_t: torch.Tensor, feats_t: torch.Tensor,
                    tmp: Path, runs: int, warmup: int, threads: int,
                    calibration: tuple[torch.Tensor, torch.Tensor] | None) -> list[Timing]:
    """TFLite float32 and, given ``calibration`` (audio, its features), int8 (network int8,
    front end float in the audio graph; the network graph is int8 end to end). Timed through
    the runtime's ``Runner``, so int8 includes quantizing the input and dequantizing the
    outputs."""
    from kwspot.export.tflite import convert, interpreter
    from kwspot.runtime.tflite_model import Runner

    builds = [("tflite", None)]
    if calibration is not None:
        builds.append(("tflite-int8", calibration))
    out = []
    for engine, calib in builds:
        full, net = tmp / f"{engine}.tflite", tmp / f"{engine}.net.tflite"
        convert(audio_in_graph(model, runtime="tflite"), audio_t, full,
                None if calib is None else calib[0])
        convert(model.network, feats_t, net, None if calib is None else calib[1])
        for inputs, path, x in (("audio", full, audio_t.numpy()),
                                ("features", net, feats_t.numpy())):
            runner = Runner(interpreter(path, threads))
            out.append(Timing(engine, inputs,
                              *time_calls(lambda r=runner, v=x: r(v), runs, warmup), runs))
    return out


def benchmark(model: KeywordClassifier, runs: int = 1000, warmup: int = 100,
              threads: int = 1, seed: int = 0, int8: bool = True,
              tflite: bool | None = None) -> dict:
    """``tflite=None``: include TFLite when its extra is installed."""
    tflite = tflite_available() if tflite is None else tflite
    model.eval()
    features = model.features
    audio = np.random.default_rng(seed).uniform(-0.1, 0.1, (1, features.clip_samples))
    audio = audio.astype(np.float32)
    audio_t = torch.from_numpy(audio)
    feats_t = model.frontend(audio_t).detach()
    feats = feats_t.numpy()
    feature_shape = (features.num_channels, features.num_frames)

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    timings: list[Timing] = []
    try:
        posterior_model = PosteriorModel(model).eval()
        with torch.inference_mode():
            for inputs, fn in (("audio", lambda: posterior_model(audio_t)),
                               ("features", lambda: model.network(feats_t))):
                timings.append(Timing("pytorch", inputs, *time_calls(fn, runs, warmup), runs))
        with tempfile.TemporaryDirectory() as tmp:
            from kwspot.export.quantize import quantize_export

            full, net = Path(tmp) / "full.onnx", Path(tmp) / "net.onnx"
            export_module(audio_in_graph(model).eval(), audio_t, full, "audio",
                          ["posteriors", "logits"])
            export_module(for_onnx(model.network), feats_t, net, "features", "logits")
            graphs = {"onnxruntime": (full, net)}
            # speed does not depend on what calibrates it: noise clips will do
            calib = np.random.default_rng(seed + 1).uniform(
                -0.3, 0.3, (32, features.clip_samples)).astype(np.float32)
            with torch.inference_mode():
                calib_t = torch.from_numpy(calib)
                calib_feats_t = model.frontend(calib_t)
            calib_feats = calib_feats_t.numpy()
            if int8:
                full8, net8 = Path(tmp) / "full8.onnx", Path(tmp) / "net8.onnx"
                shutil.copy(full, full8)
                shutil.copy(net, net8)
                quantize_export(full8, net8, calib, calib_feats)
                graphs["onnxruntime-int8"] = (full8, net8)
            for engine, (full_path, net_path) in graphs.items():
                for inputs, path, x in (("audio", full_path, audio),
                                        ("features", net_path, feats)):
                    timings.append(Timing(engine, inputs, *time_onnx(path, x, runs, warmup,
                                                                     threads), runs))
            if tflite:
                timings += _tflite_timings(model, audio_t, feats_t, Path(tmp), runs, warmup,
                                           threads, (calib_t, calib_feats_t) if int8 else None)
    finally:
        torch.set_num_threads(previous_threads)
    return {
        "model": model.model_name,
        "params": count_parameters(model.network),
        "flops": count_flops(model.network, feature_shape),
        "input_features": list(feature_shape),
        "threads": threads,
        "torch_version": torch.__version__,
        "onnxruntime_version": ort.__version__,
        "tflite_runtime": _litert_version() if tflite else None,
        "timings": [t.__dict__ for t in timings],
    }


def _litert_version() -> str:
    from importlib.metadata import version

    return f"ai-edge-litert {version('ai-edge-litert')}, litert-torch {version('litert-torch')}"
