"""`kwspot review`: the store (WAL, one row per judgement, nothing lost on a kill), the queue
(k reviews per clip, leases, model doubt first), agreement against scikit-learn and the
published Fleiss example, the corrected manifest, and the app's security rules."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi", reason="kwspot[serve] is not installed")

from starlette.testclient import TestClient

from kwspot.data import UNKNOWN
from kwspot.datasets import DataConfig, open_dataset
from kwspot.errors import KwspotError
from kwspot.review import ReviewStore, agreement_report, export_manifest, load_review_set
from kwspot.review.agreement import cohen_kappa, fleiss_kappa
from kwspot.review.app import create_review_app
from kwspot.review.clips import ReviewClip, ReviewSet, model_id, read_clips
from kwspot.review.store import Judgement, check_segments

RATE = 16000


def make_dataset(root: Path, labels: dict[str, int], seconds: float = 1.0) -> Path:
    """``root/<label>/<label>_<speaker>_nohash_<i>.wav``: tones, one pitch per label."""
    rng = np.random.default_rng(0)
    for n, (label, count) in enumerate(labels.items()):
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            t = np.arange(int(seconds * RATE)) / RATE
            audio = 0.3 * np.sin(2 * np.pi * (300 + 150 * n) * t) + \
                0.01 * rng.standard_normal(len(t))
            sf.write(str(folder / f"spk{i % 3}_nohash_{i}.wav"), audio, RATE)
    return root


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "data", {"yes": 3, "no": 3, "house": 2})


@pytest.fixture
def store(tmp_path: Path) -> ReviewStore:
    return ReviewStore(tmp_path / "review.sqlite")


# --- store -----------------------------------------------------------------------------------

def test_store_is_wal_and_keeps_every_row(store: ReviewStore) -> None:
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.add(Judgement("a.wav", "ann", "incorrect", "yes", "no", "sounds like no"))
    store.add(Judgement("a.wav", "ann", "correct", "yes"))
    store.add(Judgement("a.wav", "bob", "correct", "yes",
                        segments=[{"start": 0.1, "end": 0.5, "label": "yes"}]))
    latest = store.judgements()
    assert [(j.annotator, j.verdict) for j in latest] == [("ann", "correct"), ("bob", "correct")]
    everything = store.judgements(latest_only=False)
    assert len(everything) == 3 and everything[0].comment == "sounds like no"
    assert latest[1].segments == [{"start": 0.1, "end": 0.5, "label": "yes"}]
    with pytest.raises(KwspotError, match="verdict"):
        store.add(Judgement("a.wav", "ann", "maybe", "yes"))


def test_a_file_that_is_not_a_database_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_text("not sqlite at all, just some text that is long enough" * 20)
    with pytest.raises(KwspotError, match="not a usable review database"):
        ReviewStore(bad)


@pytest.mark.parametrize(("segments", "words"), [
    ([{"start": 1, "end": 0.5, "label": "x"}], "before its end"),
    ([{"start": 0, "end": 3, "label": "x"}], "ends after the clip"),
    ([{"start": 0, "end": 1}], "needs a label"),
    ([{"start": "a", "end": 1, "label": "x"}], "numeric"),
    ("nope", "must be a list"),
])
def test_bad_segments_are_refused(segments, words: str) -> None:
    with pytest.raises(KwspotError, match=words):
        check_segments(segments, duration_s=2.0)


def test_segments_are_sorted_and_rounded() -> None:
    got = check_segments([{"start": 1.23456, "end": 1.5, "label": " go "},
                          {"start": 0.2, "end": 0.4, "label": "yes"}], 2.0)
    assert got == [{"start": 0.2, "end": 0.4, "label": "yes"},
                   {"start": 1.235, "end": 1.5, "label": "go"}]


# --- agreement -------------------------------------------------------------------------------

def test_cohen_kappa_matches_scikit_learn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    labels = ["yes", "no", "up", "<incorrect>"]
    for _ in range(20):
        a = list(rng.choice(labels, 40))
        b = [x if rng.random() < 0.7 else str(rng.choice(labels)) for x in a]
        assert cohen_kappa(a, b) == pytest.approx(metrics.cohen_kappa_score(a, b))


def test_fleiss_kappa_matches_the_published_example() -> None:
    """Fleiss (1971) as tabulated on Wikipedia: 10 items, 14 raters, 5 categories: 0.210."""
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
             [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
             [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    items = [[str(c) for c, n in enumerate(row) for _ in range(n)] for row in table]
    assert fleiss_kappa(items) == pytest.approx(0.2099, abs=1e-4)
    assert fleiss_kappa([["a", "a"], ["b", "b"]]) == pytest.approx(1.0)
    assert fleiss_kappa([["a"], ["b"]]) is None


def test_agreement_report_lists_disagreements() -> None:
    judgements = [Judgement("1.wav", "ann", "correct", "yes"),
                  Judgement("1.wav", "bob", "incorrect", "yes", "no", "it is no"),
                  Judgement("2.wav", "ann", "correct", "go"),
                  Judgement("2.wav", "bob", "correct", "go"),
                  Judgement("3.wav", "ann", "incorrect", "up")]
    report = agreement_report(judgements)
    assert report["counts"] == {"ann": 3, "bob": 2}
    assert report["pairs"][0]["clips"] == 2
    assert [d["clip"] for d in report["disagreements"]] == ["1.wav"]
    assert report["disagreements"][0]["judgements"][1]["comment"] == "it is no"
    assert report["fleiss_clips"] == 2


# --- queue -----------------------------------------------------------------------------------

def test_reviewers_per_clip_and_leases(data: Path, store: ReviewStore) -> None:
    review = load_review_set(data, store, order="data", k=2)
    assert len(review.clips) == 8 and review.labels == ["house", "no", "yes"]
    first, remaining = review.take_next("ann")
    assert first == 0 and remaining == 8
    assert review.queue("bob")[0] == first  # k=2: both may judge it
    clip = review.clips[first]
    review.record(Judgement(clip.path, "ann", "correct", clip.label), first)
    assert first not in review.queue("ann") and first in review.queue("bob")
    review.record(Judgement(clip.path, "bob", "correct", clip.label), first)
    assert first not in review.queue("cat")  # two reviews: done
    assert review.progress() == {"clips": 8, "done": 1, "k": 2,
                                 "annotators": {"ann": 1, "bob": 1}}
    # a restart rebuilds the same state from the database
    assert load_review_set(data, store, order="data", k=2).progress() == review.progress()
    single = load_review_set(data, store, order="data", k=1)
    nxt, _ = single.take_next("ann")
    assert nxt not in single.queue("bob")  # held by ann for now


def test_concurrent_annotators_never_get_the_same_clip(data: Path, store: ReviewStore) -> None:
    from concurrent.futures import ThreadPoolExecutor

    review = load_review_set(data, store, order="data", k=1)
    with ThreadPoolExecutor(8) as pool:
        handed = list(pool.map(lambda a: review.take_next(f"a{a}")[0], range(8)))
    assert sorted(handed) == list(range(8))  # eight annotators, eight different clips
    assert review.take_next("late") == (None, 0)


def test_random_order_is_a_seeded_permutation(data: Path, store: ReviewStore) -> None:
    a = load_review_set(data, store, order="random", seed=3).queue("x")
    b = load_review_set(data, store, order="random", seed=3).queue("x")
    c = load_review_set(data, store, order="random", seed=4).queue("x")
    assert a == b and sorted(a) == list(range(8)) and a != c


class DoubtfulModel:
    """Says "yes" for every clip, so the clips labelled otherwise are doubted."""

    sample_rate = RATE
    window_samples = RATE

    def __init__(self, path: Path) -> None:
        self.labels = ["_silence_", UNKNOWN, "yes", "no"]
        self.path = path
        path.write_bytes(b"model")

    thresholds: dict[str, float] = {}  # noqa: RUF012 - read only

    def posteriors(self, windows: np.ndarray) -> np.ndarray:
        return np.tile([0.0, 0.1, 0.85, 0.05], (len(windows), 1)).astype(np.float32)

    def frontend(self) -> None:
        return None  # the detector scores whole windows with posteriors()


def test_model_order_puts_doubted_labels_first(data: Path, store: ReviewStore,
                                               tmp_path: Path) -> None:
    clips = read_clips(data)
    review = ReviewSet(clips, store, DoubtfulModel(tmp_path / "m.onnx"), order="model")
    order = [review.clips[i].label for i in review.queue("ann")]
    # p(no) = 0.1 and p(_unknown_) = 0.1 ("house" is not a model label) before p(yes) = 0.8
    assert set(order[:5]) == {"no", "house"} and order[5:] == ["yes"] * 3
    assert review.prediction(review.clips[review.queue("ann")[0]])["agrees"] is False
    cached = store.posteriors(model_id(tmp_path / "m.onnx"))
    assert len(cached) == 8  # cached: a restart does not score again


# --- export ----------------------------------------------------------------------------------

def test_export_writes_a_manifest_train_reads(data: Path, store: ReviewStore,
                                              tmp_path: Path) -> None:
    clips = read_clips(data)
    by_label = {}
    for c in clips:
        by_label.setdefault(c.label, []).append(c)
    yes, no, house = by_label["yes"], by_label["no"], by_label["house"]
    store.add(Judgement(yes[0].path, "ann", "correct", "yes"))                # confirmed
    store.add(Judgement(yes[1].path, "ann", "incorrect", "yes", "no"))       # corrected
    store.add(Judgement(yes[2].path, "ann", "incorrect", "yes"))             # corrected: one
    store.add(Judgement(yes[2].path, "bob", "incorrect", "yes", "up"))       #  says what
    store.add(Judgement(no[0].path, "ann", "incorrect", "no"))               # rejected
    store.add(Judgement(house[0].path, "ann", "correct", "house"))           # disputed
    store.add(Judgement(house[0].path, "bob", "incorrect", "house", "mouse"))
    out = tmp_path / "corrected.csv"
    stats = export_manifest(clips, store.judgements(), out)
    assert stats == {"written": 7, "left_out": 1, "unreviewed": 3, "confirmed": 1,
                     "corrected": 2, "rejected": 1, "disputed": 1}
    dataset = open_dataset(DataConfig(path=str(out), keywords=()))
    rows = {u.path: u for u in dataset.utterances}
    assert no[0].path not in rows and rows[yes[1].path].label == "no"
    assert rows[yes[2].path].label == "up"  # both say wrong; the one correction given wins
    assert rows[house[0].path].label == "house"
    assert {u.split for u in dataset.utterances} <= {"train", "validation", "test"}
    header = out.read_text().splitlines()[0]
    assert header == "path,label,split,speaker,review_status,reviews"


def test_cli_export_prints_what_was_left_out(data: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    from kwspot.cli import main

    db = tmp_path / "r.sqlite"
    store = ReviewStore(db)
    clip = read_clips(data)[0]
    store.add(Judgement(clip.path, "ann", "incorrect", clip.label))
    out = tmp_path / "c.csv"
    assert main(["review", "export", str(data), "--db", str(db), "--out", str(out)]) == 0
    assert "1 judged incorrect with no corrected label were left out" in capsys.readouterr().out
    assert main(["--debug", "review", "export", str(data), "--db", str(db), "--out",
                 str(out)]) == 0
    assert main(["review", "export", str(data), "--db", str(tmp_path / "none.sqlite"),
                 "--out", str(out)]) == 1
    assert "review database not found" in capsys.readouterr().err


# --- the app ---------------------------------------------------------------------------------

@pytest.fixture
def client(data: Path, store: ReviewStore):
    review = load_review_set(data, store, order="data")
    with TestClient(create_review_app(review, "ann", str(data)),
                    base_url="http://127.0.0.1:8010") as c:
        yield c


def test_review_round_trip(client: TestClient, store: ReviewStore) -> None:
    state = client.get("/api/state").json()
    assert state["annotator"] == "ann" and state["progress"]["clips"] == 8
    clip = client.post("/api/next").json()["clip"]
    assert clip["name"].startswith(clip["label"] + "/")  # relative to the data folder
    audio = client.get(f"/api/clips/{clip['id']}/audio")
    assert audio.headers["content-type"] == "audio/wav"
    assert sf.info(io.BytesIO(audio.content)).frames == RATE
    png = client.get(f"/api/clips/{clip['id']}/spectrogram.png")
    assert png.content[:4] == b"\x89PNG"
    saved = client.post("/api/judgements", json={
        "clip_id": clip["id"], "annotator": "ann", "verdict": "incorrect", "label": "no",
        "comment": "<b>hi</b>", "segments": [{"start": 0.1, "end": 0.6, "label": "no"}]})
    assert saved.status_code == 201 and saved.json()["progress"]["done"] == 1
    row = store.judgements()[0]
    assert (row.verdict, row.label, row.comment) == ("incorrect", "no", "<b>hi</b>")
    assert client.post("/api/next").json()["clip"]["id"] != clip["id"]
    assert client.get("/api/next").status_code == 405  # it holds a clip: never a GET
    history = client.get("/api/history").json()["judgements"]
    assert history[0]["comment"] == "<b>hi</b>"  # JSON as stored; the page shows it as text


@pytest.mark.parametrize("path", [
    "/api/clips/999/audio", "/api/clips/-1/audio", "/api/clips/..%2f..%2fetc%2fpasswd/audio",
    "/api/clips/%2e%2e/spectrogram.png", "/static/%2e%2e/app.py", "/static/..%2fapp.py",
])
def test_no_file_outside_the_data_set_is_served(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code in (404, 422)
    assert "root:" not in response.text and "import" not in response.text


def test_bad_judgements_and_cross_origin_requests_are_refused(client: TestClient) -> None:
    base = {"clip_id": 0, "annotator": "ann", "verdict": "correct"}
    assert client.post("/api/judgements", json={**base, "verdict": "maybe"}).status_code == 400
    assert client.post("/api/judgements", json={**base, "clip_id": 99}).status_code == 404
    bad_segment = client.post("/api/judgements", json={
        **base, "segments": [{"start": 0.5, "end": 0.2, "label": "x"}]})
    assert bad_segment.status_code == 400 and "before its end" in bad_segment.json()["error"]
    foreign = client.post("/api/judgements", json=base,
                          headers={"origin": "https://evil.example"})
    assert foreign.status_code == 403
    # DNS rebinding: evil.example resolved to 127.0.0.1 sends matching Host and Origin
    rebound = client.post("/api/judgements", json=base, headers={
        "host": "evil.example:8010", "origin": "http://evil.example:8010"})
    assert rebound.status_code == 403 and "host" in rebound.json()["error"]
    # every host `kwspot review --host` accepts is served (one loopback rule for both)
    for host in ("127.0.0.2:8010", "[::1]:8010", "localhost:8010"):
        assert client.get("/api/state?annotator=ann", headers={"host": host}).status_code == 200
    infinite = client.post("/api/judgements", content=json.dumps(
        {**base, "segments": [{"start": 0, "end": float("inf"), "label": "x"}]}),
        headers={"content-type": "application/json"})
    assert infinite.status_code in (400, 422)
    assert client.get("/api/state?annotator=" + "x" * 100).status_code == 400


def test_review_refuses_to_bind_off_loopback(data: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    from kwspot.cli import main

    assert main(["review", str(data), "--db", str(tmp_path / "r.sqlite"),
                 "--host", "0.0.0.0"]) == 1
    assert "loopback only" in capsys.readouterr().err


def test_killing_the_server_loses_nothing_submitted(data: Path, tmp_path: Path) -> None:
    httpx = pytest.importorskip("httpx2")
    from processes import start_kwspot

    db = tmp_path / "kill.sqlite"
    proc, base = start_kwspot(["review", str(data), "--db", str(db), "--annotator", "ann",
                               "--order", "data"], "/api/state")
    try:
        ids = []
        for i in range(3):
            clip = httpx.post(base + "/api/next").json()["clip"]
            response = httpx.post(base + "/api/judgements", json={
                "clip_id": clip["id"], "annotator": "ann", "verdict": "correct",
                "comment": f"note {i}"})
            assert response.status_code == 201
            ids.append(clip["id"])
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # no shutdown, no flush: as a crash would
        proc.wait()
    rows = sqlite3.connect(db).execute(
        "SELECT comment FROM judgements ORDER BY id").fetchall()
    assert rows == [("note 0",), ("note 1",), ("note 2",)]
    review = load_review_set(data, ReviewStore(db), order="data")
    assert not set(ids) & set(review.queue("ann"))  # a restart resumes after them
    assert json.loads(json.dumps(review.progress()))["done"] == 3


def test_agreement_endpoint(client: TestClient) -> None:
    for annotator, verdict in (("ann", "correct"), ("bob", "incorrect")):
        client.post("/api/judgements", json={"clip_id": 0, "annotator": annotator,
                                             "verdict": verdict, "comment": annotator})
    report = client.get("/api/agreement").json()
    assert report["annotators"] == ["ann", "bob"]
    assert [d["judgements"][1]["label"] for d in report["disagreements"]] == ["<incorrect>"]


def test_long_recordings_get_the_models_detections_as_suggestions(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "long", {"talk": 1}, seconds=4.0)
    store = ReviewStore(tmp_path / "r.sqlite")
    review = ReviewSet(read_clips(data), store, DoubtfulModel(tmp_path / "m.onnx"))
    assert review.is_long(review.clips[0]) and review.prediction(review.clips[0]) is None
    with TestClient(create_review_app(review, "ann"), base_url="http://127.0.0.1") as client:
        clip = client.post("/api/next").json()["clip"]
        assert clip["long"] is True
        segments = client.get(f"/api/clips/{clip['id']}/suggestions").json()["segments"]
    assert segments and all(s["label"] == "yes" and 0 <= s["start"] < s["end"] <= 4.0
                            for s in segments)
    check_segments([{k: s[k] for k in ("start", "end", "label")} for s in segments], 4.0)


def test_unknown_order_and_k_are_one_line_errors(data: Path, store: ReviewStore) -> None:
    with pytest.raises(KwspotError, match="order must be one of"):
        load_review_set(data, store, order="best")
    with pytest.raises(KwspotError, match="k >= 1"):
        load_review_set(data, store, k=0)
    assert isinstance(read_clips(data)[0], ReviewClip)
