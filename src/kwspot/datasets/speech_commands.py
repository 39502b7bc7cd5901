"""Google Speech Commands (v0.01 / v0.02) in the released layout.

``<word>/<speaker>_nohash_<n>.wav``, ``_background_noise_/*.wav``, and the official
``validation_list.txt`` / ``testing_list.txt``; a clip in neither list is training data.
"""

from __future__ import annotations

from pathlib import Path

from kwspot.data import Utterance
from kwspot.errors import KwspotError

NOISE_DIR = "_background_noise_"
LIST_FILES = {"validation": "validation_list.txt", "test": "testing_list.txt"}


def is_speech_commands(root: Path) -> bool:
    return all((root / f).is_file() for f in LIST_FILES.values())


def speaker_of(path: Path) -> str:
    return path.stem.split("_nohash_")[0]


def scan_speech_commands(root: str | Path) -> list[Utterance]:
    root = Path(root)
    if not root.is_dir():
        raise KwspotError(f"{root}: dataset folder not found")
    if not is_speech_commands(root):
        raise KwspotError(f"{root}: no validation_list.txt/testing_list.txt; not Speech Commands")
    split_of: dict[str, str] = {}
    for split, name in LIST_FILES.items():
        for line in (root / name).read_text().splitlines():
            if line.strip():
                split_of[line.strip()] = split
    rows = []
    for word_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name != NOISE_DIR):
        for wav in sorted(word_dir.glob("*.wav")):
            rel = f"{word_dir.name}/{wav.name}"
            split = split_of.get(rel, "train")
            rows.append(Utterance(str(wav), word_dir.name, split, speaker_of(wav)))
    if not rows:
        raise KwspotError(f"{root}: no word folders with .wav files")
    return rows


def background_noise_files(root: str | Path) -> list[str]:
    return sorted(str(p) for p in (Path(root) / NOISE_DIR).glob("*.wav"))
