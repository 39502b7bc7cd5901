"""Latency benchmark: one example at a time on one thread, as a phone or a small server core
runs a keyword spotter. Params and FLOPs are counted from the model; latency is measured,
median and p90 over many runs after warm-up, for PyTorch and ONNX Runtime, with the feature
front end included (raw audio in) and excluded (features in)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from kwspot.classifier import KeywordClassifier, PosteriorModel
from kwspot.export import export_module
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


def _ort_session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def benchmark(model: KeywordClassifier, runs: int = 1000, warmup: int = 100,
              threads: int = 1, seed: int = 0) -> dict:
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
            full, net = Path(tmp) / "full.onnx", Path(tmp) / "net.onnx"
            export_module(posterior_model, audio_t, full, "audio", "posteriors")
            export_module(model.network, feats_t, net, "features", "logits")
            for inputs, path, x in (("audio", full, audio), ("features", net, feats)):
                session = _ort_session(path, threads)
                name = session.get_inputs()[0].name
                median, p90 = time_calls(lambda s=session, n=name, v=x: s.run(None, {n: v}),
                                         runs, warmup)
                timings.append(Timing("onnxruntime", inputs, median, p90, runs))
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
        "timings": [t.__dict__ for t in timings],
    }
