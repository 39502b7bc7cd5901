"""Folder-per-label datasets (``<root>/<label>/*.wav``) and flat folders whose file names hold
the label (e.g. FSDD's ``{digit}_{speaker}_{index}.wav``, read with a regular expression).

Without official lists, the split is a stable hash of the speaker, so one speaker never lands
in two splits and adding files never moves old ones.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from kwspot.audio import AUDIO_SUFFIXES
from kwspot.data import Utterance
from kwspot.errors import KwspotError

__all__ = ["AUDIO_SUFFIXES", "scan_folder", "split_for_speaker"]


def split_for_speaker(speaker: str, validation_pct: float, test_pct: float) -> str:
    digest = int(hashlib.sha1(speaker.encode()).hexdigest(), 16)
    bucket = (digest % 10_000) / 100.0
    if bucket < validation_pct:
        return "validation"
    if bucket < validation_pct + test_pct:
        return "test"
    return "train"


def guess_speaker(path: Path) -> str:
    """Speech Commands style ``<spk>_nohash_<n>``; otherwise each file is its own speaker."""
    if "_nohash_" in path.stem:
        return path.stem.split("_nohash_")[0].rsplit("_", 1)[-1]
    return path.stem


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)


def scan_folder(
    root: str | Path,
    label_regex: str | None = None,
    validation_pct: float = 10.0,
    test_pct: float = 10.0,
    split: str | None = None,
) -> list[Utterance]:
    """Read a labelled folder. ``split`` forces every file into one split (e.g. a test set)."""
    root = Path(root)
    if not root.is_dir():
        raise KwspotError(f"{root}: dataset folder not found")
    rows: list[Utterance] = []
    if label_regex:
        pattern = re.compile(label_regex)
        if "label" not in pattern.groupindex:
            raise KwspotError("--label-regex needs a named group (?P<label>...)")
        for path in _audio_files(root):
            match = pattern.search(path.name)
            if not match:
                continue
            has_speaker = "speaker" in pattern.groupindex and match.group("speaker")
            speaker = match.group("speaker") if has_speaker else path.stem
            rows.append(_row(path, match.group("label"), speaker, validation_pct, test_pct, split))
    else:
        for label_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            if label_dir.name.startswith(".") or label_dir.name == "_background_noise_":
                continue
            for path in _audio_files(label_dir):
                speaker = guess_speaker(path)
                rows.append(_row(path, label_dir.name, speaker, validation_pct, test_pct, split))
    if not rows:
        hint = " matching --label-regex" if label_regex else " in <label>/ subfolders"
        raise KwspotError(f"{root}: no audio files{hint}")
    return rows


def _row(
    path: Path, label: str, speaker: str, val_pct: float, test_pct: float, split: str | None
) -> Utterance:
    chosen = split or split_for_speaker(speaker, val_pct, test_pct)
    return Utterance(str(path), label, chosen, speaker)
