"""``kwspot review export``: the data set with its reviewed labels, as a CSV manifest
(``path,label,split,speaker,review_status,reviews``) that ``kwspot train --data`` reads.

Each clip is decided from each annotator's latest judgement: ``confirmed`` (most say its label
is right), ``corrected`` (most say it is wrong, and most of the corrections name one label),
``rejected`` (most say it is wrong and nobody gave a label: left out), ``disputed`` (a tie
either way: kept with its own label), or ``unreviewed``."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from kwspot.fileio import atomic_write_text
from kwspot.review.clips import ReviewClip
from kwspot.review.store import Judgement

COLUMNS = ("path", "label", "split", "speaker", "review_status", "reviews")


def decide(clip: ReviewClip, judgements: list[Judgement]) -> tuple[str, str]:
    """(label, status) for one clip from its annotators' latest judgements: first whether
    its label is right (majority of verdicts), then, if not, which label (majority of the
    corrections given)."""
    if not judgements:
        return clip.label, "unreviewed"
    right = sum(j.verdict == "correct" for j in judgements)
    wrong = len(judgements) - right
    if right == wrong:
        return clip.label, "disputed"
    if right > wrong:
        return clip.label, "confirmed"
    votes = Counter(j.label for j in judgements if j.verdict == "incorrect" and j.label)
    if not votes:
        return clip.label, "rejected"
    ranked = votes.most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return clip.label, "disputed"
    label = ranked[0][0]
    return label, "confirmed" if label == clip.label else "corrected"


def export_manifest(clips: list[ReviewClip], judgements: list[Judgement],
                    out: str | Path) -> dict[str, Any]:
    """Write the corrected manifest; returns the count of each status."""
    by_clip: dict[str, list[Judgement]] = defaultdict(list)
    for j in judgements:
        by_clip[j.clip].append(j)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    counts: Counter[str] = Counter()
    for clip in clips:
        label, status = decide(clip, by_clip.get(clip.path, []))
        counts[status] += 1
        if status == "rejected":
            continue
        writer.writerow([clip.path, label, clip.split, clip.speaker, status,
                         len(by_clip.get(clip.path, []))])
    atomic_write_text(Path(out), buffer.getvalue())
    return {"written": len(clips) - counts["rejected"], "left_out": counts["rejected"],
            **{k: counts.get(k, 0) for k in ("unreviewed", "confirmed", "corrected",
                                             "rejected", "disputed")}}
