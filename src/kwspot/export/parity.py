"""Is the exported model the trained model? The audio every export is checked on, and one
comparison with PyTorch shared by every runtime (ONNX Runtime, ai-edge-litert)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kwspot.classifier import KeywordClassifier, PosteriorModel
from kwspot.errors import KwspotError

PARITY_TOLERANCE = 1e-4
INT8_TOLERANCE = 0.1  # int8 posteriors move by ~0.01-0.05; accuracy is what verify-export checks


def parity_clips(path: str | Path | None, count: int, samples: int, seed: int = 0) -> np.ndarray:
    """Audio for the export parity check: real clips from a folder if given, else band-limited
    noise bursts (a check on real audio is the stronger one)."""
    from kwspot.audio import fit_length, load_audio
    from kwspot.datasets.folder import AUDIO_SUFFIXES

    if path:
        files = sorted(p for p in Path(path).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise KwspotError(f"{path}: no audio files for the parity check")
        step = max(1, len(files) // count)
        return np.stack([fit_length(load_audio(f), samples) for f in files[::step][:count]])
    rng = np.random.default_rng(seed)
    envelope = np.hanning(samples)[None]
    return (rng.standard_normal((count, samples)) * 0.1 * envelope).astype(np.float32)


AudioRunner = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
NetworkRunner = Callable[[np.ndarray], np.ndarray]


@torch.no_grad()
def compare_to_torch(model: KeywordClassifier | torch.nn.Module, audio: np.ndarray,
                     run_audio: AudioRunner, run_network: NetworkRunner, name: str,
                     frontend: Any = None) -> float:
    """Largest posterior difference from PyTorch of both exported paths of any runtime: the
    audio-in graph (``run_audio``: audio -> (posteriors, logits)), and the runtime's stream
    path (``frontend.frames`` per clip -> ``run_network`` -> logits -> softmax). The front end
    is the runtime's numpy one for ``model.features`` unless given (a wake word's embedding
    front end)."""
    from kwspot.runtime.frontend import NumpyFrontend
    from kwspot.runtime.model import softmax

    audio = np.ascontiguousarray(audio, dtype=np.float32)
    expected = PosteriorModel(model).eval()(torch.from_numpy(audio)).numpy()
    got_full, got_logits = run_audio(audio)
    if np.abs(softmax(got_logits) - got_full).max() > 1e-5:
        raise KwspotError(f"{name}: its logits output does not match its posteriors")
    frontend = frontend or NumpyFrontend(model.features)
    features = np.stack([frontend.frames(a) for a in audio]).astype(np.float32)
    got_net = softmax(run_network(features))
    return float(max(np.abs(expected - got_full).max(), np.abs(expected - got_net).max()))
