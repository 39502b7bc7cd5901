"""Train the wake-word head on precomputed embeddings. The embedding is frozen, so each window
is embedded once (ONNX Runtime, the export's own embedding graph) and the head trains in
seconds; the best epoch by validation loss is kept."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from kwspot.errors import KwspotError
from kwspot.export.onnx import export_module
from kwspot.features import FeatureConfig, Frontend
from kwspot.fileio import atomic_path
from kwspot.runtime.model import onnx_session
from kwspot.wakeword import embedding as emb
from kwspot.wakeword.model import EMBEDDINGS, WINDOW_SAMPLES, EmbedWindows, TemporalHead


def embedding_graph(path: Path) -> Path:
    """The embedding of whole windows as an ONNX graph ((N, 31,712) -> (N, 96, 16)), written
    once per work folder. On 2 threads it took about 3/4 of the time of the stream front end
    (which recomputes each embedding's 76 mel frames), in batches of 32 windows."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as partial:
            export_module(EmbedWindows(emb.SpeechEmbedding()), torch.zeros(2, WINDOW_SAMPLES),
                          partial, "audio", "embeddings")
    return path


def embed_windows(windows: np.ndarray, graph: Path, threads: int = 0,
                  progress: Callable[[int, int], None] | None = None,
                  batch: int = 32) -> np.ndarray:
    """(N, 31,712) windows -> (N, 96, 16) head inputs, through ``embedding_graph``."""
    if windows.ndim != 2 or windows.shape[1] != WINDOW_SAMPLES:
        raise KwspotError(f"windows must be (N, {WINDOW_SAMPLES}) samples, got {windows.shape}")
    session = onnx_session(graph, threads)
    out = np.zeros((len(windows), emb.EMBED_DIM, EMBEDDINGS), np.float32)
    for start in range(0, len(windows), batch):
        chunk = np.ascontiguousarray(windows[start : start + batch], np.float32)
        out[start : start + len(chunk)] = session.run(None, {"audio": chunk})[0]
        done = start + len(chunk)
        if progress is not None and (done % 512 < batch or done == len(windows)):
            progress(done, len(windows))
    return out


@dataclass(frozen=True)
class HeadConfig:
    epochs: int = 15  # the best validation epoch was 7-12 in every run seen
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-3
    channels: int = 64
    dropout: float = 0.3
    classes: int = 2  # [_unknown_, phrase]; more for a classifier (benchmarks/embedding_12class)
    seed: int = 0
    # multiplies the balanced weight of each class (None: all 1): > 1 for the negative class
    # trades recall for fewer false alarms
    class_weight: tuple[float, ...] | None = None


def frontend_features(windows: np.ndarray, features: FeatureConfig, threads: int = 0,
                      batch: int = 64) -> np.ndarray:
    """(N, S) windows -> (N, C, T) through kwspot's own front end (the ``tc-resnet8`` and
    other from-scratch backbones train on these, as the head trains on embeddings)."""
    if threads:
        torch.set_num_threads(threads)
    frontend = Frontend(features).eval()
    out = np.zeros((len(windows), features.num_channels, features.num_frames), np.float32)
    with torch.no_grad():
        for start in range(0, len(windows), batch):
            chunk = torch.from_numpy(np.ascontiguousarray(windows[start : start + batch],
                                                          np.float32))
            out[start : start + len(chunk)] = frontend(chunk).numpy()
    return out


def train_head(features: np.ndarray, labels: np.ndarray, validation: np.ndarray,
               cfg: HeadConfig = HeadConfig(),
               log: Callable[[str], None] | None = None,
               build: Callable[[], nn.Module] | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Features (N, C, T), labels (N,) in 0..classes-1 (1 = the phrase), ``validation`` a
    boolean mask. Classes are weighted to balance, so every negative window is used.
    ``build`` makes what trains, called after seeding so its initial weights follow
    ``cfg.seed`` (default a ``TemporalHead`` on (N, 96, 16) embeddings)."""
    torch.manual_seed(cfg.seed)
    train, val = ~validation, validation
    x = torch.from_numpy(features)
    y = torch.from_numpy(labels.astype(np.int64))
    counts = np.bincount(labels[train], minlength=cfg.classes).astype(np.float64)
    if counts.min() == 0:
        raise KwspotError("the training windows need every class (positive and negative)")
    balanced = counts.sum() / (cfg.classes * counts)
    if cfg.class_weight is not None:
        if len(cfg.class_weight) != cfg.classes or min(cfg.class_weight) <= 0:
            raise KwspotError(f"class_weight needs {cfg.classes} positive numbers")
        balanced = balanced * np.asarray(cfg.class_weight, np.float64)
    weights = torch.tensor(balanced, dtype=torch.float32)
    head = build() if build is not None else TemporalHead(cfg.channels, cfg.dropout,
                                                          cfg.classes)
    optimizer = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * -(-int(train.sum()) // cfg.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, cfg.lr, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss(weight=weights)
    train_idx = np.flatnonzero(train)
    generator = np.random.default_rng(cfg.seed)
    best: dict[str, Any] = {"val_loss": float("inf")}
    best_state = None
    done = 0
    for epoch in range(cfg.epochs):
        head.train()
        order = generator.permutation(train_idx)
        for start in range(0, len(order), cfg.batch_size):  # the last, partial batch too
            batch = torch.from_numpy(order[start : start + cfg.batch_size])
            loss = loss_fn(head(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if done < steps:
                schedule.step()
                done += 1
        metrics = evaluate_head(head, x[torch.from_numpy(val)], y[torch.from_numpy(val)],
                                loss_fn)
        if metrics["val_loss"] < best["val_loss"]:
            best = {"epoch": epoch + 1, **metrics}
            best_state = {k: v.clone() for k, v in head.state_dict().items()}
        if log is not None:
            log(f"epoch {epoch + 1}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    if best_state is not None:
        head.load_state_dict(best_state)
    head.eval()
    return head, {**best, "steps": done, "train_windows": int(train.sum()),
                  "val_windows": int(val.sum()), "config": cfg.__dict__}


@torch.no_grad()
def evaluate_head(head: nn.Module, x: torch.Tensor, y: torch.Tensor,
                  loss_fn: nn.Module) -> dict[str, float]:
    head.eval()
    logits = head(x)
    predicted = logits.argmax(1)
    positives = y == 1
    if logits.shape[1] > 2:
        return {"val_loss": float(loss_fn(logits, y)),
                "val_accuracy": float((predicted == y).float().mean())}
    return {"val_loss": float(loss_fn(logits, y)),
            "val_recall": float((predicted[positives] == 1).float().mean())
            if positives.any() else float("nan"),
            "val_fp_rate": float((predicted[~positives] == 1).float().mean())
            if (~positives).any() else float("nan")}
