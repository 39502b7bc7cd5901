"""Utterance records, JSONL manifests and the standard KWS label recipe shared by every dataset.

A dataset is a list of ``Utterance`` rows; ``path=None`` marks a ``_silence_`` example that is
cut from background noise when the batch is built.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from kwspot.errors import KwspotError

SILENCE = "_silence_"
UNKNOWN = "_unknown_"
SPLITS = ("train", "validation", "test")
NOISE_SPEAKER = "noise:"  # the speaker of a resolved silence segment: "noise:<file index>"
SPEECH_COMMANDS_KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")


@dataclass(frozen=True)
class Utterance:
    """One clip. A resolved ``_silence_`` example is a segment of a noise recording:
    ``start_s`` seconds in, scaled by ``gain``; ``path=None`` leaves it to be drawn later."""

    path: str | None
    label: str
    split: str
    speaker: str = ""
    start_s: float = 0.0
    gain: float = 1.0


@dataclass
class Dataset:
    """Utterances of all splits, the ordered class names, and noise files for augmentation."""

    utterances: list[Utterance]
    labels: list[str]
    noise_paths: list[str] = field(default_factory=list)
    checksum: str | None = None  # of the resolved rows (kwspot.datasets.prepare)
    root: str | None = None  # the folder the rows' paths are taken relative to for that
    # the seed that fills validation/test silence left as placeholders (data without noise
    # files: drawn from synthetic noise); part of the checksum then
    silence_seed: int | None = None

    def split(self, name: str) -> list[Utterance]:
        return [u for u in self.utterances if u.split == name]

    def summary(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for name in SPLITS:
            counts = Counter(u.label for u in self.split(name))
            if counts:
                out[name] = {label: counts.get(label, 0) for label in self.labels}
        return out


def given_label(label: str, model_labels: Sequence[str]) -> str | None:
    """The model's name for a data label: itself, else ``_unknown_`` if the model has that
    class, else None (the model cannot say anything about it)."""
    if label in model_labels:
        return label
    return UNKNOWN if UNKNOWN in model_labels else None


def parse_words(text: str) -> tuple[str, ...]:
    """``"yes, no,,stop"`` -> ``("yes", "no", "stop")``: a comma-separated word list, as the
    CLI's ``--keywords`` and the server's ``?keywords=`` take it."""
    return tuple(w.strip() for w in text.split(",") if w.strip())


def write_manifest(path: str | Path, utterances: Iterable[Utterance]) -> None:
    from kwspot.fileio import atomic_write_text

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(json.dumps(asdict(u)) + "\n" for u in utterances))


def read_manifest(path: str | Path) -> list[Utterance]:
    rows = []
    with Path(path).open() as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(Utterance(**json.loads(line)))
            except (json.JSONDecodeError, TypeError) as exc:
                raise KwspotError(f"{path}:{line_no}: not a manifest row ({exc})") from None
    return rows


def apply_keyword_recipe(
    utterances: Sequence[Utterance],
    keywords: Sequence[str],
    silence_fraction: float = 0.1,
    unknown_fraction: float = 0.1,
    seed: int = 0,
    train_unknown_fraction: float | None = None,
) -> tuple[list[Utterance], list[str]]:
    """The Speech Commands 12-class recipe for any labelled set.

    Per split: every keyword clip; ``_unknown_`` drawn from the other words, and ``_silence_``
    placeholders, each ``fraction`` x the number of keyword clips.
    Labels: silence, unknown, then the keywords. ``train_unknown_fraction`` (``math.inf``: all
    of them) sets the training split's own share. Each split is drawn on its own, so the
    validation and test clips stay the same whatever training uses or adds.
    """
    present = {u.label for u in utterances}
    missing = [k for k in keywords if k not in present]
    if missing:
        raise KwspotError(f"keywords not found in the data: {', '.join(missing)}")
    keyword_set = set(keywords)
    out: list[Utterance] = []
    for split_index, split in enumerate(SPLITS):
        # one generator per split, over clips in path order: a split's draw depends only on
        # that split's clips and the seed, so adding training clips never moves the test set
        rng = np.random.default_rng([seed, split_index])
        rows = sorted((u for u in utterances if u.split == split), key=lambda u: u.path or "")
        kept = [u for u in rows if u.label in keyword_set]
        if not kept:
            continue
        others = [u for u in rows if u.label not in keyword_set and u.label != SILENCE]
        fraction = unknown_fraction
        if split == "train" and train_unknown_fraction is not None:
            fraction = train_unknown_fraction
        n_unknown = min(len(others), math.ceil(min(fraction * len(kept), len(others))))
        picks = rng.permutation(len(others))[:n_unknown]
        unknown = [Utterance(others[i].path, UNKNOWN, split, others[i].speaker) for i in picks]
        n_silence = math.ceil(silence_fraction * len(kept))
        silence = [Utterance(None, SILENCE, split) for _ in range(n_silence)]
        out.extend(kept + sorted(unknown, key=lambda u: u.path or "") + silence)
    return out, [SILENCE, UNKNOWN, *keywords]
