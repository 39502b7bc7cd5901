"""Every file kwspot writes goes through here: to a temp file beside the target, then renamed
over it, so a kill or a full disk mid-write never leaves a half file where a good one was."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
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

    # weights stored beside the graph (``share_weights``) stay there: only the graph changes
    proto = onnx.load(str(onnx_path), load_external_data=False)
    for entry in list(proto.metadata_props):
        if entry.key == key:
            proto.metadata_props.remove(entry)
    entry = proto.metadata_props.add()
    entry.key, entry.value = key, json.dumps(card)
    with atomic_path(onnx_path) as tmp:
        onnx.save(proto, str(tmp))


def copy_onnx(source: str | Path, target: str | Path) -> None:
    """Copy an ONNX graph with every weight inline, wherever its weights were stored
    (``share_weights`` puts some in a file beside it, which a plain file copy leaves
    behind)."""
    import onnx

    with atomic_path(target) as tmp:
        onnx.save(onnx.load(str(source)), str(tmp))


def share_weights(graphs: Sequence[str | Path], data_file: str | Path,
                  min_bytes: int = 1024) -> int:
    """Store the weight tensors that several ONNX graphs hold byte for byte (a wake-word or
    embedding export's audio-in graph and its ``.embed.onnx`` both carry the whole speech
    embedding) once, in ``data_file`` beside them, as ONNX external data that every graph
    references; each graph keeps its other tensors inline. ONNX Runtime reads the shared
    file relative to each graph's folder. Returns the bytes written to ``data_file``."""
    import hashlib

    import onnx
    from onnx.external_data_helper import set_external_data

    paths = [Path(g) for g in graphs]
    data_file = Path(data_file)
    if any(p.parent.resolve() != data_file.parent.resolve() for p in paths):
        raise ValueError("the graphs and their shared weights must sit in one folder")
    protos = [onnx.load(str(p)) for p in paths]

    def key(t: Any) -> str:
        return hashlib.sha256(t.raw_data + bytes(str((t.data_type, list(t.dims))), "ascii")
                              ).hexdigest()

    owners: dict[str, set[int]] = {}
    for i, proto in enumerate(protos):
        for t in proto.graph.initializer:
            if len(t.raw_data) >= min_bytes:
                owners.setdefault(key(t), set()).add(i)
    offsets: dict[str, tuple[int, int]] = {}
    blob = bytearray()
    for proto in protos:
        for t in proto.graph.initializer:
            k = key(t) if len(t.raw_data) >= min_bytes else None
            if k is None or len(owners[k]) < 2:
                continue
            if k not in offsets:
                blob.extend(b"\0" * (-len(blob) % 64))  # aligned, as onnx writes them
                offsets[k] = (len(blob), len(t.raw_data))
                blob.extend(t.raw_data)
            set_external_data(t, data_file.name, *offsets[k])
            t.data_location = onnx.TensorProto.EXTERNAL
            t.ClearField("raw_data")
    with atomic_path(data_file) as tmp:
        tmp.write_bytes(bytes(blob))
    for path, proto in zip(paths, protos, strict=True):
        with atomic_path(path) as tmp:
            onnx.save(proto, str(tmp))
    return len(blob)
