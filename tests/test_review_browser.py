"""The review page in a real headless Chromium: five clips judged with the keyboard alone (a
comment and a segment among them), then the database rows and the exported manifest are
checked; labels and comments holding HTML stay text (no script runs)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="kwspot[serve] is not installed")
httpx = pytest.importorskip("httpx2", reason="httpx2 is not installed")

from processes import KWSPOT, start_kwspot, stop  # noqa: E402
from test_review import make_dataset  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
EVIL_LABEL = "<img src=x onerror=alert(1)>"
EVIL_COMMENT = "<script>alert(2)</script> & <b>bold</b>"


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium browser installed "
                    "(apt-get install chromium)")
def test_five_clips_reviewed_with_the_keyboard_alone(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    data = make_dataset(tmp_path / "data", {"yes": 2, "no": 2, EVIL_LABEL: 1, "go": 1})
    db = tmp_path / "review.sqlite"
    proc, base = start_kwspot(["review", str(data), "--db", str(db), "--annotator", "ann",
                               "--order", "data"], "/api/state")
    dialogs: list[str] = []
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM)
            try:
                page = browser.new_page(viewport={"width": 1100, "height": 1000})
                page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
                page.goto(base + "/")
                labels_seen = []

                def wait_clip(index: int) -> None:
                    """The page is ready for clip ``index``: ``index`` judgements listed and
                    a clip on screen (the next clip comes up before the list refreshes)."""
                    page.wait_for_function(
                        f"document.getElementById('history').children.length === {index}"
                        " && document.body.dataset.clip !== undefined")
                    labels_seen.append(page.inner_text("#label"))

                kb = page.keyboard
                wait_clip(0)                        # clip 1: correct
                kb.press("1")
                kb.press("Enter")
                wait_clip(1)                        # clip 2: incorrect, relabelled "stop"
                kb.press("2")
                kb.type("stop")
                kb.press("Enter")
                wait_clip(2)                        # clip 3: correct, with a comment
                kb.press("1")
                kb.press("c")
                kb.type(EVIL_COMMENT)
                kb.press("Enter")
                wait_clip(3)                        # clip 4: a segment, then correct
                kb.press("a")
                kb.press("Escape")
                kb.press("1")
                kb.press("Enter")
                wait_clip(4)                        # clip 5: incorrect, no label known
                kb.press("2")
                kb.press("Escape")
                kb.press("Enter")
                page.wait_for_function(
                    "document.getElementById('history').children.length === 5")
                history = page.inner_text("#history")
                page.screenshot(path=str(tmp_path / "review.png"), full_page=True)
            finally:
                browser.close()
    finally:
        stop(proc)

    assert not dialogs, f"a script ran: {dialogs}"
    assert EVIL_COMMENT in history  # shown as the text typed, not as markup
    assert EVIL_LABEL in labels_seen
    rows = sqlite3.connect(db).execute(
        "SELECT verdict, label, original_label, comment, segments FROM judgements "
        "ORDER BY id").fetchall()
    assert [r[0] for r in rows] == ["correct", "incorrect", "correct", "correct", "incorrect"]
    assert rows[1][1] == "stop" and rows[4][1] is None
    assert rows[2][3] == EVIL_COMMENT
    segments = json.loads(rows[3][4])
    assert len(segments) == 1 and segments[0]["label"] == rows[3][2]
    assert [r[2] for r in rows] == labels_seen

    out = tmp_path / "corrected.csv"
    result = subprocess.run([*KWSPOT, "review", "export", str(data), "--db", str(db),
                             "--out", str(out)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "1 judged incorrect with no corrected label were left out" in result.stdout
    lines = out.read_text().splitlines()
    assert len(lines) == 1 + 6 - 1
    assert sum(",corrected," in line for line in lines) == 1
    assert (tmp_path / "review.png").read_bytes()[:4] == b"\x89PNG"
