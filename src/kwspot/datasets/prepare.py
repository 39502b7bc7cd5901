"""``kwspot prepare``: resolve a dataset's recipe once into a manifest that every run reads.

A prepared folder holds ``manifest.jsonl`` (every clip: path relative to the data root, label,
split, speaker; silence as named noise segments) and ``prepared.json`` (the class labels in
order, the noise files, the recipe that made it, counts, and a checksum of all of it). Train,
eval and table read only that, so test sets are identical across seeds and models, and every
report names the checksum of the data it was measured on. The checksum uses paths relative
to the data root, so the same data prepared on another machine has the same checksum.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections import Counter
from pathlib import Path

from kwspot.data import SILENCE, SPLITS, Dataset, Utterance, read_manifest, write_manifest
from kwspot.errors import KwspotError

PREPARED_INFO = "prepared.json"
MANIFEST = "manifest.jsonl"
FORMAT = 1


def is_prepared(path: str | Path) -> bool:
    return (Path(path) / PREPARED_INFO).is_file()


def _relative(path: str | None, root: Path) -> str | None:
    return None if path is None else os.path.relpath(Path(path).resolve(), root)


def _row_key(u: Utterance, root: Path) -> list:
    return [_relative(u.path, root), u.label, u.split, u.speaker, u.start_s, u.gain]


def dataset_checksum(dataset: Dataset) -> str:
    """sha256 over the labels, noise files and every row (paths relative to the dataset's
    root folder)."""
    if dataset.root is None:
        raise KwspotError("a checksum needs the dataset's root folder")
    root = Path(dataset.root).resolve()
    body: dict = {"labels": dataset.labels,
                  "noise": [_relative(p, root) for p in dataset.noise_paths],
                  "rows": [_row_key(u, root) for u in dataset.utterances]}
    if any(u.path is None and u.split != "train" for u in dataset.utterances):
        body["silence_seed"] = dataset.silence_seed  # it fills those rows
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def data_root(path: str | Path) -> Path:
    """The folder a dataset's relative paths hang from: the folder itself, or a file's folder."""
    path = Path(path).resolve()
    return path if path.is_dir() else path.parent


def speaker_summary(dataset: Dataset) -> dict:
    """Speakers per split, speakers found in two splits, and whether speakers are real (a
    dataset without speaker ids gives every file its own "speaker")."""
    by_split: dict[str, set[str]] = {s: set() for s in SPLITS}
    files: Counter[str] = Counter()
    for u in dataset.utterances:
        if u.path is not None and u.label != SILENCE:
            by_split[u.split].add(u.speaker)
            files[u.split] += 1
    crossing = {s for a in SPLITS for b in SPLITS if a < b for s in by_split[a] & by_split[b]}
    per_file = all(len(by_split[s]) == files[s] for s in SPLITS if files[s] > 1)
    return {"per_split": {s: len(v) for s, v in by_split.items()},
            "crossing_splits": len(crossing), "one_per_file": per_file}


def write_prepared(dataset: Dataset, out_dir: str | Path, source: dict) -> dict:
    """Write ``manifest.jsonl`` and ``prepared.json`` for a resolved dataset (one that
    :func:`kwspot.datasets.open_dataset` returned, so its root is known); returns the info."""
    from kwspot.fileio import atomic_write_text

    if dataset.root is None:
        raise KwspotError("write_prepared needs a dataset with its root folder")
    out_dir, root = Path(out_dir), Path(dataset.root)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [dataclasses.replace(u, path=_relative(u.path, root)) for u in dataset.utterances]
    write_manifest(out_dir / MANIFEST, rows)
    info = {
        "format": FORMAT,
        "checksum": dataset.checksum or dataset_checksum(dataset),
        "root": str(root),
        "labels": dataset.labels,
        "noise": [_relative(p, root) for p in dataset.noise_paths],
        "counts": dataset.summary(),
        "speakers": speaker_summary(dataset),
        "recipe": source,
    }
    atomic_write_text(out_dir / PREPARED_INFO, json.dumps(info, indent=2) + "\n")
    return info


def read_prepared_info(path: str | Path) -> dict:
    info_path = Path(path) / PREPARED_INFO
    try:
        info = json.loads(info_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise KwspotError(f"{info_path}: not a readable prepared-data file ({exc})") from None
    if info.get("format") != FORMAT:
        raise KwspotError(f"{info_path}: prepared-data format {info.get('format')!r}; this "
                          f"kwspot reads format {FORMAT}; prepare the data again")
    return info


def load_prepared(path: str | Path, root: str | Path | None = None) -> Dataset:
    """The dataset a prepared folder fixes. ``root`` overrides where the audio lives (the
    data moved); the checksum is checked, so an edited manifest is refused."""
    path = Path(path)
    info = read_prepared_info(path)
    root = Path(root or info["root"])
    if not root.is_dir():
        raise KwspotError(f"{path}: prepared from {root}, which is not there; prepare the data "
                          "again where it now lives")
    rows = [dataclasses.replace(u, path=None if u.path is None else str(root / u.path))
            for u in read_manifest(path / MANIFEST)]
    noise = [str(root / p) for p in info["noise"]]
    dataset = Dataset(rows, list(info["labels"]), noise, root=str(root.resolve()),
                      silence_seed=int(info.get("recipe", {}).get("seed", 0)))
    checksum = dataset_checksum(dataset)
    if checksum != info["checksum"]:
        raise KwspotError(f"{path}: manifest does not match its checksum (edited by hand?); "
                          "prepare the data again")
    dataset.checksum = checksum
    return dataset


def prepare_dataset(cfg, out_dir: str | Path, force: bool = False) -> dict:
    """Resolve ``cfg`` (a :class:`kwspot.datasets.DataConfig`) into ``out_dir``.

    Preparing the same data with the same recipe again is a no-op; a different result in a
    folder that already holds one needs ``force``.
    """
    from kwspot.datasets import open_dataset

    out_dir = Path(out_dir)
    if is_prepared(cfg.path):
        raise KwspotError(f"{cfg.path} is already prepared data; give the original dataset")
    dataset = open_dataset(cfg)
    if is_prepared(out_dir):
        old = read_prepared_info(out_dir)
        if old.get("checksum") == dataset.checksum and old.get("root") == dataset.root:
            return old
        if old.get("checksum") == dataset.checksum:  # the same data, moved: a new root
            return write_prepared(dataset, out_dir, dataclasses.asdict(cfg))
        if not force:
            raise KwspotError(f"{out_dir} holds other prepared data (checksum "
                              f"{old.get('checksum', '?')[:12]}); choose another --out or "
                              "pass --force")
    elif out_dir.exists() and any(out_dir.iterdir()):
        raise KwspotError(f"{out_dir} exists and is not prepared data; choose an empty --out")
    return write_prepared(dataset, out_dir, dataclasses.asdict(cfg))
