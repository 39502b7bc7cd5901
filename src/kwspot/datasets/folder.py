"""Folder-per-label datasets (``<root>/<label>/*.wav``) and flat folders whose file names hold
the label (e.g. FSDD's ``{digit}_{speaker}_{index}.wav``, read with a regular expression).

Without official lists, the split is a stable hash of the speaker, so one speaker never lands
in two splits and adding files never moves old ones.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from pathlib import Path

from kwspot.audio import AUDIO_SUFFIXES
from kwspot.data import Utterance
from kwspot.errors import KwspotError

__all__ = ["AUDIO_SUFFIXES", "assign_splits", "scan_folder", "split_for_speaker", "split_speakers"]


def _digest(speaker: str) -> int:
    return int(hashlib.sha1(speaker.encode()).hexdigest(), 16)


def split_for_speaker(speaker: str, validation_pct: float, test_pct: float) -> str:
    bucket = (_digest(speaker) % 10_000) / 100.0
    if bucket < validation_pct:
        return "validation"
    if bucket < validation_pct + test_pct:
        return "test"
    return "train"


def split_speakers(speakers: set[str], validation_pct: float, test_pct: float) -> dict[str, str]:
    """Each speaker's split. The stable hash buckets when they give every asked-for split at
    least one speaker (adding speakers then never moves old ones); otherwise, for small sets
    (e.g. FSDD's 5 speakers), whole speakers dealt in hash order so that train, validation and
    test each get some, as long as there are enough speakers."""
    chosen = {s: split_for_speaker(s, validation_pct, test_pct) for s in speakers}
    wanted = {"train": True, "validation": validation_pct > 0, "test": test_pct > 0}
    if all(not want or name in chosen.values() for name, want in wanted.items()):
        return chosen
    if len(speakers) < sum(wanted.values()):
        return chosen  # too few to hold any out; training says so (see kwspot.training.loop)
    order = sorted(speakers, key=_digest)
    n_val = max(1, round(len(order) * validation_pct / 100)) if wanted["validation"] else 0
    n_test = max(1, round(len(order) * test_pct / 100)) if wanted["test"] else 0
    while len(order) - n_val - n_test < 1:  # keep at least one training speaker
        if n_val >= n_test and n_val > 1:
            n_val -= 1
        else:
            n_test -= 1
    out = {s: "validation" for s in order[:n_val]}
    out |= {s: "test" for s in order[n_val : n_val + n_test]}
    return out | {s: "train" for s in order[n_val + n_test :]}


def assign_splits(rows: list[Utterance], validation_pct: float,
                  test_pct: float) -> list[Utterance]:
    """Rows whose split is empty get their speaker's split (see :func:`split_speakers`)."""
    open_rows = {u.speaker for u in rows if not u.split}
    if not open_rows:
        return rows
    splits = split_speakers(open_rows, validation_pct, test_pct)
    return [u if u.split else replace(u, split=splits[u.speaker]) for u in rows]


def guess_speaker(path: Path) -> str:
    """Speech Commands style ``<spk>_nohash_<n>``; otherwise each file is its own speaker."""
    if "_nohash_" in path.stem:
        return path.stem.split("_nohash_")[0].rsplit("_", 1)[-1]
    return path.stem


def audio_files_under(folder: str | Path, what: str,
                      skip_background_noise: bool = False) -> list[Path]:
    """Every audio file under ``folder`` (recursive, sorted); a missing folder or one without
    audio is a one-line error naming ``what`` it was for (e.g. "--negatives"). Speech folders
    can skip a Speech Commands ``_background_noise_`` folder inside them."""
    path = Path(folder)
    if not path.is_dir():
        raise KwspotError(f"{path}: folder for {what} not found")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and not (
        skip_background_noise and "_background_noise_" in p.relative_to(path).parts))
    if not files:
        raise KwspotError(f"{path}: no audio files for {what}")
    return files


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
            rows.append(_row(path, match.group("label"), speaker, split))
    else:
        for label_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            if label_dir.name.startswith(".") or label_dir.name == "_background_noise_":
                continue
            for path in _audio_files(label_dir):
                speaker = guess_speaker(path)
                rows.append(_row(path, label_dir.name, speaker, split))
    if not rows:
        hint = " matching --label-regex" if label_regex else " in <label>/ subfolders"
        raise KwspotError(f"{root}: no audio files{hint}")
    return assign_splits(rows, validation_pct, test_pct)


def _row(path: Path, label: str, speaker: str, split: str | None) -> Utterance:
    return Utterance(str(path), label, split or "", speaker)
