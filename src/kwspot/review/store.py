"""Review storage: SQLite in WAL mode, one row per judgement, committed before the answer
goes back, so killing the server loses nothing that was submitted. A new judgement by the
same annotator on the same clip supersedes the old one (the old row stays: history)."""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kwspot.errors import KwspotError

VERDICTS = ("correct", "incorrect")

SCHEMA = """
CREATE TABLE IF NOT EXISTS judgements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    clip TEXT NOT NULL,               -- the clip's path, as the data set names it
    annotator TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('correct', 'incorrect')),
    label TEXT,                       -- the corrected label, when incorrect and known
    original_label TEXT NOT NULL,     -- the label the clip had when judged
    comment TEXT NOT NULL DEFAULT '',
    segments TEXT NOT NULL DEFAULT '[]',  -- JSON [{"start": s, "end": s, "label": l}]
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS judgements_clip ON judgements (clip, annotator);
CREATE INDEX IF NOT EXISTS judgements_annotator ON judgements (annotator, id);
CREATE TABLE IF NOT EXISTS posteriors (
    clip TEXT NOT NULL,
    model TEXT NOT NULL,              -- the model file's sha256 prefix
    posteriors TEXT NOT NULL,         -- JSON list, in the model's label order
    PRIMARY KEY (clip, model)
);
"""


@dataclass(frozen=True)
class Judgement:
    clip: str
    annotator: str
    verdict: str
    original_label: str
    label: str | None = None
    comment: str = ""
    segments: list[dict[str, Any]] = field(default_factory=list)
    created: float = 0.0
    id: int = 0

    @property
    def implied_label(self) -> str:
        """The label this judgement says the clip has: its own if correct, the correction if
        one was given, else ``<incorrect>`` (wrong, but nobody said what it is)."""
        if self.verdict == "correct":
            return self.original_label
        return self.label or "<incorrect>"


def check_segments(segments: Any, duration_s: float | None = None) -> list[dict[str, Any]]:
    """Segments as the page sends them, checked: start < end, inside the clip, a label."""
    if not isinstance(segments, list):
        raise KwspotError("segments must be a list")
    out = []
    for i, seg in enumerate(segments):
        if not isinstance(seg, dict):
            raise KwspotError(f"segment {i + 1} must be an object")
        try:
            start, end = float(seg["start"]), float(seg["end"])
        except (KeyError, TypeError, ValueError):
            raise KwspotError(f"segment {i + 1} needs numeric start and end") from None
        if not (math.isfinite(start) and math.isfinite(end)):
            raise KwspotError(f"segment {i + 1} needs finite start and end")
        label = str(seg.get("label", "")).strip()
        if not 0 <= start < end:
            raise KwspotError(f"segment {i + 1}: start must be >= 0 and before its end")
        if duration_s is not None and end > duration_s + 0.01:
            raise KwspotError(f"segment {i + 1} ends after the clip ({duration_s:.2f} s)")
        if not label:
            raise KwspotError(f"segment {i + 1} needs a label")
        out.append({"start": round(start, 3), "end": round(end, 3), "label": label})
    return sorted(out, key=lambda s: (s["start"], s["end"]))


class ReviewStore:
    """``ReviewStore(path)``: judgements and cached model predictions. Each call opens its
    own connection, so the store is safe from any thread or process."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._connect() as db:
                mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise KwspotError(f"{self.path}: not a usable review database ({exc})") from None
        if mode.lower() != "wal":
            raise KwspotError(f"{self.path}: cannot use WAL mode (journal mode is {mode})")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("PRAGMA synchronous=FULL")
            with db:  # one transaction, committed on success
                yield db
        finally:
            db.close()

    def add(self, j: Judgement) -> Judgement:
        if j.verdict not in VERDICTS:
            raise KwspotError(f"verdict must be one of {VERDICTS}, got {j.verdict!r}")
        if not j.annotator.strip():
            raise KwspotError("an annotator name is needed")
        created = time.time()
        with self._connect() as db:
            cur = db.execute(
                "INSERT INTO judgements (clip, annotator, verdict, label, original_label, "
                "comment, segments, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (j.clip, j.annotator, j.verdict, j.label or None, j.original_label, j.comment,
                 json.dumps(j.segments), created))
            row_id = cur.lastrowid or 0
        return Judgement(j.clip, j.annotator, j.verdict, j.original_label, j.label or None,
                         j.comment, j.segments, created, row_id)

    _COLUMNS = "id, clip, annotator, verdict, label, original_label, comment, segments, created"

    @staticmethod
    def _rows(rows: list[tuple]) -> list[Judgement]:
        return [Judgement(clip, annotator, verdict, original, label, comment,
                          json.loads(segments), created, row_id)
                for row_id, clip, annotator, verdict, label, original, comment, segments,
                created in rows]

    def judgements(self, latest_only: bool = True) -> list[Judgement]:
        """Every judgement (oldest first); with ``latest_only``, each annotator's last word
        on each clip."""
        query = f"SELECT {self._COLUMNS} FROM judgements"
        if latest_only:
            query += " WHERE id IN (SELECT MAX(id) FROM judgements GROUP BY clip, annotator)"
        with self._connect() as db:
            return self._rows(db.execute(query + " ORDER BY id").fetchall())

    def history(self, annotator: str, limit: int = 10) -> list[Judgement]:
        """``annotator``'s last ``limit`` judgements, newest first (an indexed query)."""
        with self._connect() as db:
            return self._rows(db.execute(
                f"SELECT {self._COLUMNS} FROM judgements WHERE annotator = ? "
                "ORDER BY id DESC LIMIT ?", (annotator, limit)).fetchall())

    def posteriors(self, model: str) -> dict[str, list[float]]:
        """Cached model posteriors per clip (labels may change; posteriors do not)."""
        with self._connect() as db:
            rows = db.execute("SELECT clip, posteriors FROM posteriors WHERE model = ?",
                              (model,)).fetchall()
        return {clip: json.loads(p) for clip, p in rows}

    def save_posteriors(self, model: str, rows: list[tuple[str, list[float]]]) -> None:
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO posteriors (clip, model, posteriors) "
                           "VALUES (?, ?, ?)",
                           [(clip, model, json.dumps([round(float(x), 6) for x in p]))
                            for clip, p in rows])
