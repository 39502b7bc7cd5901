"""Every file kwspot writes goes through here: to a temp file beside the target, then renamed
over it, so a kill or a full disk mid-write never leaves a half file where a good one was."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path to write; on success it replaces ``path``, on failure it is removed."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_figure(fig: Any, path: str | Path, dpi: int = 110) -> None:
    """A matplotlib figure to PNG (or whatever the suffix says), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png")


def write_card(card: dict[str, Any], model_path: str | Path) -> Path:
    """The model card: ``<model>.json`` beside the model, each file replaced atomically; the
    same JSON also goes in the model's metadata (``kwspot_card``) of an .onnx or .tflite file,
    so the model still runs when the side file is lost."""
    model_path = Path(model_path)
    from kwspot.runtime.model import CARD_KEY, card_path

    if model_path.suffix.lower() == ".onnx":
        _embed_card(card, model_path)
    elif model_path.suffix.lower() == ".tflite":
        from kwspot.runtime.tflite_model import with_metadata

        data = with_metadata(model_path.read_bytes(), CARD_KEY, json.dumps(card).encode())
        with atomic_path(model_path) as tmp:
            tmp.write_bytes(data)
    card_file = card_path(model_path)
    atomic_write_text(card_file, json.dumps(card, indent=2) + "\n")
    return card_file


def _embed_card(card: dict[str, Any], onnx_path: Path) -> None:
    import onnx

    from kwspot.runtime.model import CARD_KEY as key

    proto = onnx.load(str(onnx_path))
    for entry in list(proto.metadata_props):
        if entry.key == key:
            proto.metadata_props.remove(entry)
    entry = proto.metadata_props.add()
    entry.key, entry.value = key, json.dumps(card)
    with atomic_path(onnx_path) as tmp:
        onnx.save(proto, str(tmp))
