"""Checkpoints that describe themselves: weights plus model name, labels and feature settings,
so eval/export/bench need nothing but the file."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path
from typing import Any

import torch

from kwspot.classifier import KeywordClassifier
from kwspot.errors import KwspotError
from kwspot.features import FeatureConfig
from kwspot.fileio import atomic_path
from kwspot.training.config import from_dict


def model_record(model: KeywordClassifier, **extra: Any) -> dict[str, Any]:
    return {
        "model_name": model.model_name,
        "labels": model.labels,
        "features": dataclasses.asdict(model.features),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }


def save_record(record: dict[str, Any], path: str | Path) -> None:
    """Write to a temp file and rename, so a kill mid-write never leaves a corrupt checkpoint."""
    with atomic_path(path) as tmp:
        torch.save(record, tmp)


def load_record(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint as data only: ``weights_only=True`` refuses pickled code, so a crafted
    file cannot run anything."""
    path = Path(path)
    if not path.is_file():
        if path.parent.is_dir() and (path.parent / "config.json").is_file():
            saved = sorted(p.name for p in path.parent.glob("*.pt"))
            raise KwspotError(f"{path}: checkpoint not found; the run has "
                              f"{', '.join(saved) if saved else 'no checkpoint yet'} (best.pt "
                              "is written at the first evaluation, every --eval-every steps)")
        raise KwspotError(f"{path}: checkpoint not found")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unsafe content"
        raise KwspotError(f"{path}: refused to load: not a plain-data kwspot checkpoint "
                          f"({first})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise KwspotError(f"{path}: corrupt or truncated checkpoint ({exc})") from None
    if not isinstance(record, dict) or "state_dict" not in record:
        raise KwspotError(f"{path}: not a kwspot checkpoint")
    return record


def run_dir_of(path: str | Path) -> Path:
    """The folder a model belongs to: a run directory itself, or a checkpoint's folder."""
    path = Path(path)
    return path if path.is_dir() else path.parent


def load_classifier(path: str | Path) -> tuple[KeywordClassifier, dict[str, Any]]:
    """Rebuild the classifier (eval mode) from a checkpoint; also returns the raw record.
    ``"shipped"`` names the checkpoint of the shipped TC-ResNet8 (in the package)."""
    from kwspot.runtime.model import SHIPPED, pretrained_path

    if str(path) == SHIPPED:
        path = pretrained_path().with_suffix(".pt")
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    record = load_record(path)
    try:
        features = from_dict(FeatureConfig, record["features"])
        model = KeywordClassifier(record["model_name"], record["labels"], features)
        model.load_state_dict(record["state_dict"])
    except (KeyError, RuntimeError, EOFError) as exc:
        raise KwspotError(f"{path}: not a kwspot checkpoint ({exc})") from None
    model.eval()
    return model, record
