"""CSV manifests: ``path,label[,split,speaker]`` with a header row; relative paths are resolved
against the CSV's folder. Rows without a split get their speaker's split
(``folder.split_speakers``)."""

from __future__ import annotations

import csv
from pathlib import Path

from kwspot.data import SPLITS, Utterance
from kwspot.datasets.folder import assign_splits
from kwspot.errors import KwspotError


def read_csv_manifest(
    path: str | Path, validation_pct: float = 10.0, test_pct: float = 10.0
) -> list[Utterance]:
    path = Path(path)
    if not path.is_file():
        raise KwspotError(f"{path}: manifest not found")
    rows = []
    with path.open(newline="", encoding="utf-8-sig") as fh:  # Excel writes a BOM
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
            raise KwspotError(f"{path}: needs a header with at least 'path,label'")
        for rec in reader:
            line_no = reader.line_num
            path_text, label = (rec.get("path") or "").strip(), (rec.get("label") or "").strip()
            if not path_text or not label:
                raise KwspotError(f"{path}:{line_no}: row needs both a path and a label")
            audio = Path(path_text)
            if not audio.is_absolute():
                audio = path.parent / audio
            speaker = (rec.get("speaker") or "").strip() or audio.stem
            split = (rec.get("split") or "").strip()
            if split == "val":
                split = "validation"
            if split and split not in SPLITS:
                raise KwspotError(f"{path}:{line_no}: split {split!r} is not one of {SPLITS}")
            rows.append(Utterance(str(audio), label, split, speaker))
    if not rows:
        raise KwspotError(f"{path}: manifest has no rows")
    return assign_splits(rows, validation_pct, test_pct)
