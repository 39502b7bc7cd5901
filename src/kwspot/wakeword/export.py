"""Export a wake-word model as kwspot's other ONNX exports: ``<name>.onnx`` takes raw 16 kHz
audio (1.98 s windows) and gives posteriors and logits, with the mel front end, the speech
embedding and the head all inside; the card beside it (and in its metadata) says how to feed it.

Two more graphs let the streaming engine compute each embedding once per stream:
``<name>.embed.onnx`` (12,512 samples -> one embedding) and ``<name>.net.onnx`` (16 embeddings
-> logits). All three are checked against PyTorch before anything is moved into place. The
embedding's 2.4 MB of weights, which the first two graphs both hold, are then stored once in
``<name>.weights`` beside them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from kwspot import __version__
from kwspot.classifier import PosteriorsAndLogits
from kwspot.errors import KwspotError
from kwspot.export.card import INPUT_NAME, LOGITS_NAME, OUTPUT_NAME, staged_export
from kwspot.export.onnx import export_module
from kwspot.export.parity import PARITY_TOLERANCE, compare_to_torch
from kwspot.fileio import share_weights, write_card
from kwspot.runtime.embedding_frontend import EmbeddingFrontend
from kwspot.runtime.model import network_path, onnx_session
from kwspot.wakeword import embedding as emb
from kwspot.wakeword.model import (
    EMBEDDINGS,
    FEATURES,
    WINDOW_SAMPLES,
    EmbedOne,
    WakewordClassifier,
)


def embedding_path(model_path: str | Path) -> Path:
    path = Path(model_path)
    return path.with_name(f"{path.stem}.embed{path.suffix}")


def weights_path(model_path: str | Path) -> Path:
    """The file the audio-in and embedding graphs share Google's embedding weights in."""
    path = Path(model_path)
    return path.with_name(f"{path.stem}.weights")


def wakeword_card(model: WakewordClassifier, out_path: Path,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    classes = len(model.labels)
    posteriors = {"name": OUTPUT_NAME, "shape": ["batch", classes],
                  "meaning": "softmax posteriors in label order"}
    return {
        "format": "kwspot-onnx-v1",
        "kwspot_version": __version__,
        "model": "wakeword-embedding-head",
        "labels": model.labels,
        "sample_rate": emb.SAMPLE_RATE,
        "window_samples": WINDOW_SAMPLES,
        "window_seconds": WINDOW_SAMPLES / emb.SAMPLE_RATE,
        "input": {"name": INPUT_NAME, "shape": ["batch", WINDOW_SAMPLES], "dtype": "float32",
                  "range": [-1.0, 1.0]},
        "output": posteriors,
        "outputs": [posteriors, {"name": LOGITS_NAME, "shape": ["batch", classes],
                                 "meaning": "logits (pre-softmax) in label order"}],
        "embedding": {
            "file": embedding_path(out_path).name, "frame_samples": emb.EMBED_SAMPLES,
            "hop_samples": emb.EMBED_HOP, "frames": EMBEDDINGS, "dim": emb.EMBED_DIM,
            "input": "audio", "output": "embedding",
            "source": emb.SOURCE, "sha256": emb.file_digests(),
            "meaning": "one embedding per 80 ms from its own 12,512 samples; the mel clamp "
                       "(max - 80 dB) is taken per embedding, not over the whole input"},
        "shared_weights": {"file": weights_path(out_path).name,
                           "meaning": "the speech embedding's weights, stored once for this "
                                      "graph and the embedding graph (ONNX external data): "
                                      "keep it beside them"},
        "detector": {"hop_ms": 1000 * emb.EMBED_HOP / emb.SAMPLE_RATE},
        "network": {"file": network_path(out_path).name, "input": "features",
                    "shape": ["batch", emb.EMBED_DIM, EMBEDDINGS], "output": "logits",
                    "meaning": "logits in label order from 16 embeddings (channels first)"},
        **(extra or {}),
    }


@torch.no_grad()
def export_wakeword(model: WakewordClassifier, out_path: str | Path, check_audio: np.ndarray,
                    extra: dict[str, Any] | None = None,
                    tolerance: float = PARITY_TOLERANCE) -> dict[str, Any]:
    """Write the three graphs and the card; returns the card with the measured parity.
    ``check_audio``: (N, 31,712) windows, ideally real speech."""
    out_path = Path(out_path)
    if out_path.suffix.lower() != ".onnx":
        raise KwspotError(f"{out_path}: wake-word models export to ONNX (.onnx)")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    audio = np.ascontiguousarray(check_audio, np.float32)
    if audio.ndim != 2 or audio.shape[1] != WINDOW_SAMPLES or not len(audio):
        raise KwspotError(f"check audio must be (N, {WINDOW_SAMPLES}) windows")
    card = wakeword_card(model, out_path, extra)
    with staged_export(out_path, (embedding_path,)) as (full, network, embedding):
        example = torch.from_numpy(audio[:2])
        export_module(PosteriorsAndLogits(model), example, full, INPUT_NAME,
                      [OUTPUT_NAME, LOGITS_NAME])
        export_module(EmbedOne(model.embedding), example[:, : emb.EMBED_SAMPLES], embedding,
                      "audio", "embedding")
        export_module(model.head, model.embeddings(example), network, "features", "logits")
        diff = _parity(model, full, network, embedding, audio)
        card["parity"] = {"max_abs_diff": diff, "clips": len(audio), "tolerance": tolerance}
        if diff > tolerance:
            raise KwspotError(f"ONNX Runtime and PyTorch disagree by {diff:.2e} "
                              f"(> {tolerance:.0e}); nothing was written")
    write_card(card, out_path)
    # the audio-in graph and the embedding graph both hold Google's embedding: store it once
    share_weights([out_path, embedding_path(out_path)], weights_path(out_path))
    return card


def _parity(model: WakewordClassifier, full: Path, network: Path, embedding: Path,
            audio: np.ndarray) -> float:
    """``compare_to_torch`` for the audio-in graph and the stream path (the embedding graph
    per 80 ms, then the network graph)."""
    full_session, net = onnx_session(full, 0), onnx_session(network, 0)
    return compare_to_torch(
        model, audio, lambda x: tuple(full_session.run(None, {INPUT_NAME: x})[:2]),
        lambda f: net.run(None, {"features": f})[0], str(full),
        frontend=EmbeddingFrontend(FEATURES, onnx_session(embedding, 0)))
