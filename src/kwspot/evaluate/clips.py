"""Classification metrics on a labelled set: accuracy, per-class precision/recall/F1, confusion.

Production metrics on long audio (false alarms per hour) belong to the detector, not here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from kwspot.classifier import KeywordClassifier
from kwspot.data import SILENCE, UNKNOWN, given_label
from kwspot.errors import KwspotError
from kwspot.fileio import atomic_write_text, save_figure

if TYPE_CHECKING:
    from kwspot.clips import LabelledAudio
    from kwspot.datasets import DataConfig


@torch.no_grad()
def predict_proba(model: KeywordClassifier, audio: np.ndarray, batch_size: int = 256,
                  window_frames: int | None = None) -> np.ndarray:
    """(N, S) audio -> (N, C) posteriors, in eval mode, without augmentation. With
    ``window_frames`` (a causal model), audio longer than a clip is history and only the last
    window is scored, as a stream scores it."""
    if window_frames is not None and not hasattr(model.network, "window_logits"):
        raise KwspotError(f"{model.model_name} has no stream window (window_logits): only a "
                          "causal TC-ResNet scores clips after history")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(audio), batch_size):
        chunk = torch.from_numpy(audio[start : start + batch_size]).to(device)
        logits = model(chunk) if window_frames is None else \
            model.network.window_logits(model.frontend(chunk), window_frames)
        out.append(torch.softmax(logits, dim=-1).cpu().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, len(model.labels)), np.float32)


@dataclass
class ClassificationReport:
    labels: list[str]
    confusion: np.ndarray  # rows: true class, columns: predicted class

    @property
    def total(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / max(1, self.total))

    def per_class(self) -> dict[str, dict[str, float]]:
        out = {}
        for i, label in enumerate(self.labels):
            tp = self.confusion[i, i]
            predicted = self.confusion[:, i].sum()
            actual = self.confusion[i].sum()
            precision = tp / predicted if predicted else 0.0
            recall = tp / actual if actual else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            out[label] = {
                "precision": float(precision),
                "recall": float(recall),
                "f1": float(f1),
                "support": int(actual),
            }
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "examples": self.total,
            "labels": self.labels,
            "per_class": self.per_class(),
            "confusion": self.confusion.tolist(),
        }

    def confusion_text(self) -> str:
        width = max(6, *(len(label) for label in self.labels)) + 1
        head = " " * width + "".join(f"{label[:6]:>7}" for label in self.labels)
        rows = [head]
        for i, label in enumerate(self.labels):
            cells = "".join(f"{int(v):>7}" for v in self.confusion[i])
            rows.append(f"{label:<{width}}{cells}")
        return "\n".join(rows)


def classification_report(
    true: Sequence[int], predicted: Sequence[int], labels: list[str]
) -> ClassificationReport:
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(confusion, (np.asarray(true), np.asarray(predicted)), 1)
    return ClassificationReport(list(labels), confusion)


def plot_confusion(report: ClassificationReport, path: str | Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = report.confusion.astype(float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = max(5.0, 0.55 * len(report.labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(report.labels)), report.labels, rotation=60, ha="right")
    ax.set_yticks(range(len(report.labels)), report.labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(report.labels)):
        for j in range(len(report.labels)):
            if cm[i, j]:
                colour = "white" if norm[i, j] > 0.5 else "black"
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7, color=colour)
    ax.set_title(title or f"accuracy {report.accuracy:.2%} on {report.total} clips")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def write_report(report: ClassificationReport, path: str | Path, **extra: Any) -> None:
    atomic_write_text(path, json.dumps({**extra, **report.to_dict()}, indent=2) + "\n")


def roc_curve(positive: np.ndarray, score: np.ndarray) -> dict[str, Any]:
    """One keyword against every other clip: false/true positive rates at each distinct score,
    and the area under the curve (the chance a random positive outscores a random negative)."""
    positive = np.asarray(positive, bool)
    order = np.argsort(-score, kind="stable")
    score, positive = score[order], positive[order]
    distinct = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]
    tp = np.cumsum(positive)[distinct]
    fp = np.cumsum(~positive)[distinct]
    n_pos, n_neg = max(1, int(positive.sum())), max(1, int((~positive).sum()))
    tpr = np.r_[0.0, tp / n_pos]
    fpr = np.r_[0.0, fp / n_neg]
    return {"fpr": fpr, "tpr": tpr, "thresholds": np.r_[np.inf, score[distinct]],
            "auc": float(np.trapezoid(tpr, fpr))}


def thin_curve(curve: dict[str, Any], points: int = 200) -> dict[str, list[float]]:
    """At most ``points`` points of a curve, for the JSON report."""
    keep = np.unique(np.linspace(0, len(curve["fpr"]) - 1, points).round().astype(int))
    return {"fpr": curve["fpr"][keep].round(5).tolist(),
            "tpr": curve["tpr"][keep].round(5).tolist()}


def plot_roc(curves: dict[str, dict[str, Any]], path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    for keyword, c in curves.items():
        ax.plot(np.maximum(c["fpr"], 1e-4), c["tpr"], lw=1.2,
                label=f"{keyword} (AUC {c['auc']:.3f})")
    ax.set_xscale("log")
    ax.set_xlabel("false positive rate (other clips scored as this keyword)")
    ax.set_ylabel("true positive rate")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    ax.set_title("clip-level ROC per keyword")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


@dataclass
class Scorer:
    """Any trained model as audio (N, S) -> posteriors (N, C), with what feeding it needs."""

    score: Callable[[np.ndarray], np.ndarray]
    labels: list[str]
    sample_rate: int
    window_samples: int
    training_seed: int | None  # the data seed it was trained with, if recorded
    # clips shorter than the window are centred on this (a model on the speech embedding
    # reads 1.98 s and never heard digital zeros: its stream silence); None: zeros after
    pad: np.ndarray | None = None


def load_scorer(model_path: str | Path) -> Scorer:
    """A checkpoint (.pt or run dir) or an exported .onnx or .tflite (whose card records its
    training)."""
    from kwspot.runtime.model import is_exported, resolve_export

    # "shipped" stays the TC-ResNet8 checkpoint (PyTorch); the embedding model has none
    path = resolve_export(model_path)

    if is_exported(path):
        from kwspot.runtime.model import load_keyword_model

        onnx_model = load_keyword_model(path, threads=0)
        config = onnx_model.card.get("training", {}).get("config") or {}

        def score_onnx(audio: np.ndarray) -> np.ndarray:
            return np.concatenate([onnx_model.posteriors(audio[i : i + 256])
                                   for i in range(0, len(audio), 256)])

        pad = None
        if getattr(onnx_model, "embedding", None) is not None:
            from kwspot.runtime.model import silence_for

            pad = silence_for(onnx_model, onnx_model.window_samples)
        return Scorer(score_onnx, onnx_model.labels, onnx_model.sample_rate,
                      onnx_model.window_samples, config.get("data", {}).get("seed"), pad)
    from kwspot.checkpoint import load_classifier

    model, record = load_classifier(path)
    config = record.get("config") or {}
    return Scorer(lambda audio: predict_proba(model, audio), model.labels,
                  model.features.sample_rate, model.features.clip_samples,
                  config.get("data", {}).get("seed"))


def evaluation_clips(labels: Sequence[str], window_samples: int, sample_rate: int,
                     data: DataConfig, split: str, seed: int,
                     pad: np.ndarray | None = None) -> tuple[LabelledAudio, dict[str, str]]:
    """The clips of one split, labelled in the model's classes (unknown words as _unknown_,
    the recipe's silence filled from noise with ``seed``), and the label mapping used.
    ``pad``: see ``decode_clips``."""
    import dataclasses

    from kwspot.clips import load_labelled
    from kwspot.datasets import open_dataset
    from kwspot.datasets.speech_commands import is_speech_commands
    from kwspot.training.augment import fill_silence, noise_bank

    data = dataclasses.replace(data, seed=seed)
    keywords = tuple(label for label in labels if label not in (SILENCE, UNKNOWN))
    if data.keywords is None:
        # The released Speech Commands layout gets the 12-class recipe, as in training. A
        # labelled folder (e.g. the prepared test set, whose _silence_ clips are real) is
        # taken as it is: every clip counts, and unknown labels count as _unknown_.
        recipe = is_speech_commands(Path(data.path)) and SILENCE in labels and UNKNOWN in labels
        data = dataclasses.replace(data, keywords=keywords if recipe else ())
    dataset = open_dataset(data)
    rows = dataset.utterances if split == "all" else dataset.split(split)
    if not rows:
        raise KwspotError(f"{data.path}: no clips in split {split!r}; try --split all")
    mapping: dict[str, str] = {}
    for label in sorted({u.label for u in rows}):
        name = given_label(label, labels)
        if name is None:
            raise KwspotError(f"the data has label {label!r}, unknown to the model {labels}")
        mapping[label] = name
    rows = [dataclasses.replace(u, label=mapping[u.label]) for u in rows]
    clips = load_labelled(rows, labels, window_samples, sample_rate, pad=pad)
    if clips.is_silence.any():  # the recipe's silence: noise as recorded, at U[0, 1]
        seed = data.seed if dataset.silence_seed is None else dataset.silence_seed
        noise = noise_bank(dataset.noise_paths, seed)
        clips.audio = fill_silence(clips.audio, clips.is_silence, noise, 1.0, seed + 2)
    if len(clips) == 0:
        raise KwspotError("no clip could be decoded")
    clips.data_checksum = dataset.checksum
    return clips, mapping


def run_evaluation(
    model_path: str | Path, data: DataConfig, split: str, out_dir: str | Path | None,
    seed: int | None = None,
) -> tuple[ClassificationReport, list[str], dict[str, str]]:
    """Evaluate on one split of a dataset (``split='all'``: every clip).

    Labels the model does not know count as ``_unknown_`` when it has that class, as in the
    Speech Commands recipe. ``data.seed`` draws the recipe's ``_unknown_`` clips and its
    ``_silence_`` noise, exactly as training's own test evaluation does with the same seed;
    ``seed=None`` takes the seed the model was trained with (0 if unrecorded).
    Returns the report, bad files, and the label mapping used.
    """
    scorer = load_scorer(model_path)
    labels = scorer.labels
    if seed is None:
        seed = scorer.training_seed if scorer.training_seed is not None else 0
    clips, mapping = evaluation_clips(labels, scorer.window_samples, scorer.sample_rate, data,
                                      split, seed, scorer.pad)
    proba = scorer.score(clips.audio)
    report = classification_report(clips.targets, proba.argmax(1), labels)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        curves = {k: roc_curve(clips.targets == i, proba[:, i])
                  for i, k in enumerate(labels) if k not in (SILENCE, UNKNOWN)}
        write_report(report, out / "report.json", model=str(model_path), data=str(data.path),
                     data_checksum=clips.data_checksum, split=split, bad_files=clips.bad_files,
                     label_mapping={k: v for k, v in mapping.items() if k != v},
                     roc_auc={k: c["auc"] for k, c in curves.items()},
                     roc={k: thin_curve(c) for k, c in curves.items()})
        plot_roc(curves, out / "roc.png")
        plot_confusion(report, out / "confusion.png")
        atomic_write_text(out / "confusion.txt", report.confusion_text() + "\n")
    return report, clips.bad_files, mapping
