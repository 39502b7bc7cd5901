"""Long test streams and their metrics: what goes into a stream, how events are scored against
the truth (hits, false alarms, wrong keywords, latency), that the threshold sweep replays the
detector's own logic, calibration, and hard-negative mining."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import soundfile as sf
from fakes import FakeModel, middle

from kwspot.data import SPEECH_COMMANDS_KEYWORDS
from kwspot.datasets.negatives import (
    fsdd_files,
    fsdd_split,
    keyword_free_vocabulary,
    tts_sentences,
    voices_for_split,
)
from kwspot.datasets.streams import TRUTH_FORMAT, StreamConfig, build_streams, read_truth
from kwspot.errors import KwspotError
from kwspot.evaluate.calibrate import calibrate
from kwspot.evaluate.streams import (
    Outcome,
    ScoredStream,
    evaluate_streams,
    replay,
    score_stream,
    tally,
)
from kwspot.runtime.detector import Detector, DetectorConfig, detect_audio

RATE = 16000


class TwoToneModel(FakeModel):
    """Two keywords: 'low' for loud 300 Hz, 'high' for loud 3 kHz. A keyword's posterior is
    the share of the window's middle half that holds its tone."""

    labels: ClassVar[list[str]] = ["_silence_", "_unknown_", "low", "high"]

    def posteriors(self, windows: np.ndarray) -> np.ndarray:
        mid = middle(windows)
        frames = mid[:, : (mid.shape[1] // 160) * 160].reshape(len(mid), -1, 160)
        spectrum = np.abs(np.fft.rfft(frames, axis=2))
        loud = np.sqrt((frames ** 2).mean(axis=2)) > 0.05
        high = spectrum[..., 20:].sum(axis=2) > spectrum[..., :20].sum(axis=2)
        p_low = (loud & ~high).mean(axis=1)
        p_high = (loud & high).mean(axis=1)
        return np.stack([1 - p_low - p_high, np.zeros_like(p_low), p_low, p_high], axis=1)


def tone(freq: float, seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_stream(path: Path, items: list[tuple[str, float, float, float]], total: float,
                 split: str = "test") -> Path:
    """items: (kind/keyword, freq, start, seconds); 'low'/'high' are true keywords."""
    audio = np.zeros(round(total * RATE), np.float32)
    events, negatives = [], []
    for name, freq, start, seconds in items:
        piece = tone(freq, seconds)
        first = round(start * RATE)
        audio[first : first + len(piece)] += piece
        record = {"start": start, "end": start + seconds}
        if name in ("low", "high"):
            events.append({"keyword": name, **record})
        else:
            negatives.append({"kind": name, "label": name, **record})
    sf.write(str(path), audio, RATE, subtype="PCM_16")
    truth = {"format": TRUTH_FORMAT, "audio": path.name, "sample_rate": RATE,
             "duration_s": total, "split": split, "events": events, "negatives": negatives}
    path.with_suffix(".json").write_text(json.dumps(truth))
    return path


@pytest.fixture
def stream(tmp_path: Path) -> Path:
    items = [
        ("low", 300, 2.0, 0.45), ("high", 3000, 5.0, 0.45), ("low", 300, 8.0, 0.45),
        ("tts", 3000, 11.0, 0.3),  # a negative that looks like 'high', less strongly
        ("high", 3000, 14.0, 0.12),  # a true 'high' too short to reach the threshold: a miss
        ("fsdd", 300, 17.0, 0.45),  # a negative exactly like 'low': a false alarm
    ]
    return write_stream(tmp_path / "s.wav", items, total=20.0, split="validation")


def test_hits_misses_false_alarms_and_latency_are_counted_as_documented(stream: Path) -> None:
    report = evaluate_streams(TwoToneModel(), [stream], DetectorConfig(threshold=0.7))
    d = report["default_thresholds"]
    assert d["keywords_in_truth"] == 4 and d["hits"] == 3
    assert d["frr"] == pytest.approx(0.25)
    assert d["per_keyword"]["high"]["frr"] == pytest.approx(0.5)
    # per keyword: 'low' hit twice and fired once on the fsdd negative, 'high' never wrong
    assert d["per_keyword"]["low"]["precision"] == pytest.approx(2 / 3)
    assert d["per_keyword"]["high"]["precision"] == 1.0
    for k in ("low", "high"):
        assert 0 <= d["per_keyword"][k]["latency_s"]["median"] <= \
            d["per_keyword"][k]["latency_s"]["p90"] <= 1.0
    assert d["false_alarms"] == 1 and d["false_alarms_by_source"] == {"fsdd": 1}
    assert d["fa_per_hour"] == pytest.approx(1 / (20 / 3600))
    assert d["precision"] == pytest.approx(0.75)
    assert d["frr_by_snr"] == {"unknown": {"frr": 0.25, "truth": 4}}
    assert 0 <= d["latency_s"]["median"] <= 1.0  # fires after the tone ends, within a window
    ops = report["operating_points"]["overall"]
    assert all(v is None or v["fa_per_hour"] <= float(k) for k, v in ops.items())


def test_a_wrong_keyword_is_a_false_alarm_and_a_miss(tmp_path: Path) -> None:
    # truth says 'low' but the audio is a 3 kHz tone: the detector says 'high'
    path = tmp_path / "w.wav"
    write_stream(path, [("high", 3000, 2.0, 0.45)], total=5.0)
    truth = json.loads(path.with_suffix(".json").read_text())
    truth["events"][0]["keyword"] = "low"
    path.with_suffix(".json").write_text(json.dumps(truth))
    d = evaluate_streams(TwoToneModel(), [path], DetectorConfig(threshold=0.7))[
        "default_thresholds"]
    assert d["hits"] == 0 and d["frr"] == 1.0 and d["false_alarms"] == 1
    assert d["false_alarms_by_source"] == {"keyword low": 1}


def test_close_repeats_each_get_their_hit(tmp_path: Path) -> None:
    """Two true 'low' 0.7 s apart: the first event takes the first, the second the second."""
    path = write_stream(tmp_path / "r.wav", [("low", 300, 2.0, 0.45), ("low", 300, 3.2, 0.45)],
                        total=6.0)
    truth = json.loads(path.with_suffix(".json").read_text())
    truth["events"][0]["snr_db"], truth["events"][1]["snr_db"] = 24.0, 7.5
    path.with_suffix(".json").write_text(json.dumps(truth))
    d = evaluate_streams(TwoToneModel(), [path], DetectorConfig(threshold=0.7,
                                                                refractory_ms=100))[
        "default_thresholds"]
    assert d["hits"] == 2 and d["false_alarms"] == 0
    assert list(d["frr_by_snr"]) == ["5-10 dB", "20-25 dB"]
    assert all(0 <= x <= 1.0 for x in [d["latency_s"]["median"], d["latency_s"]["p90"]])


def test_only_the_spotted_keywords_count_as_truth(stream: Path) -> None:
    d = evaluate_streams(TwoToneModel(), [stream], DetectorConfig(threshold=0.7),
                         keywords=["low"])["default_thresholds"]
    assert d["keywords_in_truth"] == 2 and d["hits"] == 2 and d["frr"] == 0.0


def test_the_sweep_replays_exactly_what_the_detector_does(stream: Path) -> None:
    audio, _ = sf.read(str(stream), dtype="float32")
    for threshold in (0.3, 0.5, 0.7, 0.95):
        cfg = DetectorConfig(threshold=threshold)
        live = detect_audio(audio, TwoToneModel(), cfg, chunk_ms=123)
        detector = Detector(TwoToneModel(), cfg)
        scored = score_stream(detector, stream)
        replayed = replay(scored, detector.thresholds, cfg.refractory_ms / 1000)
        assert [(detector.keywords[k], round(t, 3)) for k, t in replayed] == [
            (e.keyword, round(e.end_s, 3)) for e in live]


def test_calibration_puts_thresholds_between_negatives_and_keywords(stream: Path) -> None:
    result = calibrate(TwoToneModel(), [stream], target_fa_per_hour=1.0)
    c = result["calibration"]
    # 'high': the 0.3 s negative must stay silent, the 0.45 s keyword must fire
    assert c["per_keyword"]["high"]["fa_per_hour"] == 0
    assert c["per_keyword"]["high"]["frr"] == pytest.approx(0.5)  # the 0.12 s one is missed
    # 'low' cannot be separated from the identical fsdd negative: meeting the budget costs
    # every 'low', and the calibration says so
    assert c["per_keyword"]["low"] == {"threshold": result["thresholds"]["low"], "frr": 1.0,
                                       "fa_per_hour": 0.0}
    # the firing latency at the calibrated thresholds, as eval-stream measures it there
    at_thresholds = evaluate_streams(TwoToneModel(), [stream], DetectorConfig(
        thresholds=result["thresholds"]))["default_thresholds"]
    assert c["latency_s"] == pytest.approx(at_thresholds["latency_s"]["median"])
    assert 0.0 < c["latency_s"] < 1.0
    with pytest.raises(KwspotError):
        calibrate(TwoToneModel(), [stream], target_fa_per_hour=0)
    # thresholds are never tuned on the audio that reports them, nor on training audio
    for split in ("test", "train"):
        truth = json.loads(stream.with_suffix(".json").read_text())
        other = stream.with_name(f"{split}.wav")
        other.write_bytes(stream.read_bytes())
        other.with_suffix(".json").write_text(json.dumps({**truth, "split": split}))
        with pytest.raises(KwspotError, match="calibrate only on validation streams"):
            calibrate(TwoToneModel(), [stream, other], target_fa_per_hour=1.0)


def test_shared_calibration_is_one_threshold_within_the_whole_budget(stream: Path) -> None:
    from kwspot.evaluate.streams import threshold_grid

    # one false alarm in the 20 s stream is 180 FA/h: a budget of 200 allows exactly one
    result = calibrate(TwoToneModel(), [stream], target_fa_per_hour=200.0, shared=True)
    c = result["calibration"]
    assert c["mode"] == "shared" and len(set(result["thresholds"].values())) == 1
    t = next(iter(result["thresholds"].values()))
    assert c["all_keywords"]["fa_per_hour"] == pytest.approx(180.0)
    # the next threshold down the grid breaks the budget
    grid = threshold_grid()
    below = grid[grid < t]
    assert len(below)
    lower = evaluate_streams(TwoToneModel(), [stream], DetectorConfig(
        threshold=float(below[-1])))["default_thresholds"]
    assert lower["fa_per_hour"] > 200.0
    # the even split (100 FA/h each: none at all) gives other, per-keyword thresholds
    per_keyword = calibrate(TwoToneModel(), [stream], target_fa_per_hour=200.0)
    assert per_keyword["calibration"]["mode"] == "per keyword"
    assert per_keyword["thresholds"] != result["thresholds"]


def test_thresholds_written_into_the_card_become_the_default(tiny_onnx: Path,
                                                             tmp_path: Path) -> None:
    import shutil

    from kwspot.evaluate.calibrate import write_thresholds
    from kwspot.runtime import OnnxKeywordModel

    for f in tiny_onnx.parent.glob(tiny_onnx.stem + "*"):
        shutil.copy(f, tmp_path / f.name)
    model_path = tmp_path / tiny_onnx.name
    keywords = [k for k in OnnxKeywordModel(model_path).labels if not k.startswith("_")]
    thresholds = {k: 0.5 + i / 10 for i, k in enumerate(keywords)}
    write_thresholds(model_path, {"thresholds": thresholds, "calibration": {"hours": 1}})
    model = OnnxKeywordModel(model_path)
    assert model.thresholds == thresholds
    assert list(Detector(model).thresholds) == [thresholds[k] for k in keywords]
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(model_path)).metadata_props}
    assert json.loads(meta["kwspot_card"])["thresholds"] == thresholds


def test_mining_keeps_false_alarms_and_never_a_keyword(tmp_path: Path) -> None:
    from kwspot.evaluate.mining import mine_hard_negatives

    items = [("low", 300, 2.0, 0.45), ("fsdd", 300, 6.0, 0.45), ("tts", 3000, 10.0, 0.45)]
    path = write_stream(tmp_path / "train.wav", items, total=13.0, split="train")
    counts = mine_hard_negatives(TwoToneModel(), [path], tmp_path / "mined", threshold=0.5)
    assert counts["fired as low"] == 1 and counts["fired as high"] == 1
    assert counts["skipped: overlaps a keyword"] == 1
    clips = sorted((tmp_path / "mined").rglob("*.wav"))
    assert len(clips) == counts["clips"] == 6
    for clip in clips:
        audio, rate = sf.read(str(clip))
        assert rate == RATE and len(audio) == RATE and np.abs(audio).max() > 0.3
    test_stream = write_stream(tmp_path / "test.wav", items, total=13.0, split="test")
    with pytest.raises(KwspotError, match="training streams"):
        mine_hard_negatives(TwoToneModel(), [test_stream], tmp_path / "x")


def test_read_truth_refuses_what_is_not_a_stream(tmp_path: Path) -> None:
    with pytest.raises(KwspotError, match="ground truth"):
        read_truth(tmp_path / "none.wav")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(KwspotError, match="JSON"):
        read_truth(tmp_path / "x.wav")
    (tmp_path / "y.json").write_text("{}")
    with pytest.raises(KwspotError, match="not a kwspot"):
        read_truth(tmp_path / "y.wav")


# --- what goes into streams ----------------------------------------------------------------


def test_negative_speech_never_holds_a_keyword() -> None:
    vocabulary = set(keyword_free_vocabulary(SPEECH_COMMANDS_KEYWORDS))
    assert not vocabulary & {*SPEECH_COMMANDS_KEYWORDS, "know", "write"}
    assert {"going", "only", "upon"} <= vocabulary  # look-alikes stay: they must not fire
    for text, audio in tts_sentences("test", 5, seed=0, keywords=SPEECH_COMMANDS_KEYWORDS):
        assert not set(text.split()) & set(SPEECH_COMMANDS_KEYWORDS)
        assert audio.dtype == np.float32 and len(audio) > RATE // 2


def test_voice_timbres_words_and_fsdd_speakers_are_dealt_into_disjoint_splits() -> None:
    splits = ("train", "validation", "test")
    variants = {s: {v.partition("+")[2] for v in voices_for_split(s)} for s in splits}
    words = {s: set(keyword_free_vocabulary(SPEECH_COMMANDS_KEYWORDS, s)) for s in splits}
    for a, b in itertools.combinations(splits, 2):
        assert not variants[a] & variants[b], (a, b, variants[a] & variants[b])
        assert not words[a] & words[b]
    assert all(len(variants[s] - {""}) >= 5 and len(words[s]) >= 50 for s in splits)
    assert {s: fsdd_split(s) for s in ("george", "jackson", "nicolas", "yweweler", "theo")} == {
        "george": "train", "jackson": "train", "nicolas": "train", "yweweler": "validation",
        "theo": "test"}
    for split in ("validation", "test"):
        for text, _audio in tts_sentences(split, 3, seed=0, keywords=SPEECH_COMMANDS_KEYWORDS):
            assert set(text.split()) <= words[split]


def test_fsdd_files_of_a_split(tmp_path: Path) -> None:
    for name in ("3_theo_1.wav", "1_theo_1.wav", "4_george_2.wav", "notes.wav"):
        sf.write(str(tmp_path / name), np.zeros(800), 8000)
    assert [Path(p).name for p in fsdd_files(tmp_path, "test")] == ["1_theo_1.wav",
                                                                      "3_theo_1.wav"]
    # a digit that is a keyword is never a negative
    assert [Path(p).name for p in fsdd_files(tmp_path, "test", ("one",))] == ["3_theo_1.wav"]


def make_sc(root: Path) -> None:
    """A tiny Speech Commands release: 2 keywords, 2 other words, 3 speakers (one per split)."""
    lists: dict[str, list[str]] = {"validation": [], "test": []}
    rng = np.random.default_rng(0)
    for w, word in enumerate(("yes", "no", "tree", "house")):
        for s, split in enumerate(("train", "validation", "test")):
            for n in range(2):
                rel = f"{word}/{s:08x}_nohash_{n}.wav"
                (root / word).mkdir(parents=True, exist_ok=True)
                clip = np.zeros(RATE, np.float32)
                clip[4000:10000] = 0.3 * np.sin(np.arange(6000) * (0.05 + 0.02 * w))
                clip += rng.standard_normal(RATE).astype(np.float32) * 0.001
                sf.write(str(root / rel), clip, RATE, subtype="PCM_16")
                if split != "train":
                    lists[split].append(rel)
    (root / "validation_list.txt").write_text("\n".join(lists["validation"]) + "\n")
    (root / "testing_list.txt").write_text("\n".join(lists["test"]) + "\n")


def test_build_streams_uses_one_split_and_is_reproducible(tmp_path: Path) -> None:
    make_sc(tmp_path / "sc")
    cfg = StreamConfig(split="test", keywords=("yes", "no"), sentences=2,
                       negatives_minutes=0.5, seed=3)
    summary = build_streams(str(tmp_path / "sc"), tmp_path / "a", cfg)
    assert summary["keywords"] == 4 and summary["negative_items"] == 4 + 2
    wav, truth = read_truth(tmp_path / "a" / "keywords.wav")
    audio, rate = sf.read(str(wav))
    assert rate == RATE and truth["duration_s"] == pytest.approx(len(audio) / RATE, abs=1e-3)
    assert sorted(e["keyword"] for e in truth["events"]) == ["no", "no", "yes", "yes"]
    spans = sorted([(e["start"], e["end"]) for e in truth["events"] + truth["negatives"]])
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))  # no overlaps
    assert all(5 <= e["snr_db"] <= 25 for e in truth["events"])
    wav, negatives = read_truth(tmp_path / "a" / "negatives.wav")
    assert negatives["events"] == [] and negatives["duration_s"] >= 30
    assert {n["kind"] for n in negatives["negatives"]} == {"unknown_word", "tts"}
    assert negatives["passes"] >= 2 and len({n["speed"] for n in negatives["negatives"]}) > 4
    build_streams(str(tmp_path / "sc"), tmp_path / "b", cfg)
    for name in ("keywords.wav", "negatives.wav"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_another_spotters_detections_are_counted_by_the_same_rule() -> None:
    """``tally`` takes any spotter's (keyword, end time) events (the pocketsphinx comparison
    uses it): a hit ends within [start, end + 1 s] of an unmatched true keyword of its kind;
    a second detection of the same word, a detection elsewhere, or of the wrong word, is a
    false alarm."""
    truth = [{"keyword": "happy", "start": 1.0, "end": 2.0},
             {"keyword": "happy", "start": 10.0, "end": 10.8}]
    stream = ScoredStream("s", 3600.0, np.zeros(0), np.zeros((0, 2)), truth,
                          [{"kind": "fsdd", "start": 30.0, "end": 31.0}])
    outcome = Outcome(["happy", "cat"], 1.0)
    tally(outcome, stream, [(0, 2.9), (0, 3.0), (0, 30.5), (1, 10.5), (0, 11.7)])
    assert outcome.hits["happy"] == 2 and outcome.truths["happy"] == 2
    assert outcome.false_alarms["happy"] == 2 and outcome.false_alarms["cat"] == 1
    assert outcome.fa_sources["fsdd"] == 1
    assert outcome.latencies == pytest.approx([0.9, 0.9])
