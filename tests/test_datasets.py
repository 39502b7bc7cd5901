"""Dataset readers and the keyword recipe, on tiny generated layouts and on real data if present."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kwspot.data import (
    SILENCE,
    SPEECH_COMMANDS_KEYWORDS,
    SPLITS,
    UNKNOWN,
    Utterance,
    apply_keyword_recipe,
    read_manifest,
    write_manifest,
)
from kwspot.datasets import DataConfig, open_dataset
from kwspot.datasets.folder import guess_speaker, scan_folder, split_for_speaker
from kwspot.datasets.manifest import read_csv_manifest
from kwspot.datasets.speech_commands import (
    background_noise_files,
    is_speech_commands,
    scan_speech_commands,
)
from kwspot.errors import KwspotError

FSDD_REGEX = r"^(?P<label>\d)_(?P<speaker>[a-z]+)_"
OTHER_WORDS = ("cat", "dog", "bird", "marvin")
_CLIP = (0.1 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)


def write_clip(path: Path, seconds: float = 1.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), _CLIP[: round(16000 * seconds)], 16000, subtype="PCM_16")
    return path


def speaker_names(count: int) -> list[str]:
    """Distinct lowercase names: 'ba', 'ca', ... (letters only, as FSDD's regex wants)."""
    letters = "bcdfghjklmnpqrstvwxz"
    return [letters[i % 20] + letters[i // 20] + "a" for i in range(count)]


# --- a fake Speech Commands release --------------------------------------------------------------


def make_speech_commands(root: Path) -> dict[str, str]:
    """Every keyword and four other words; speakers 0-5 train, 6-7 validation, 8 test.

    Word i has speakers 0..(4 + i % 5) with 1 + (i + speaker) % 2 clips each, so counts differ
    per word and per split. Returns ``{"word/file.wav": split}``. The lists use CRLF line ends,
    include a file that does not exist and end with a blank line, as hand-edited lists do.
    """
    truth: dict[str, str] = {}
    for i, word in enumerate(SPEECH_COMMANDS_KEYWORDS + OTHER_WORDS):
        for spk in range(5 + i % 5):
            for n in range(1 + (i + spk) % 2):
                rel = f"{word}/{spk:08x}_nohash_{n}.wav"
                write_clip(root / rel, seconds=0.05)
                truth[rel] = "train" if spk < 6 else "validation" if spk < 8 else "test"
    for name in ("white_noise.wav", "running_tap.wav"):
        write_clip(root / "_background_noise_" / name)
    (root / "_background_noise_" / "README.md").write_text("noise")
    for split, list_name in (("validation", "validation_list.txt"), ("test", "testing_list.txt")):
        lines = [rel for rel, s in truth.items() if s == split] + ["yes/ffffffff_nohash_9.wav"]
        (root / list_name).write_text("\r\n".join(lines) + "\r\n\r\n")
    return truth


@pytest.fixture
def fake_sc(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "speech_commands"
    return root, make_speech_commands(root)


def test_scan_speech_commands_uses_the_lists(fake_sc) -> None:
    root, truth = fake_sc
    assert is_speech_commands(root)
    rows = scan_speech_commands(root)
    got = {f"{Path(u.path).parent.name}/{Path(u.path).name}": u.split for u in rows}
    assert got == truth  # every clip once, right split, no noise files, no phantom list entries
    assert set(Counter(got.values())) == set(SPLITS)
    for u in rows:
        assert u.label == Path(u.path).parent.name
        assert u.speaker == Path(u.path).name.split("_nohash_")[0]
        assert Path(u.path).is_file()
    assert [Path(p).name for p in background_noise_files(root)] == [
        "running_tap.wav",
        "white_noise.wav",
    ]


def test_scan_speech_commands_needs_both_lists(fake_sc) -> None:
    root, _ = fake_sc
    (root / "testing_list.txt").unlink()
    assert not is_speech_commands(root)
    with pytest.raises(KwspotError, match="testing_list"):
        scan_speech_commands(root)


def assert_recipe(rows: list[Utterance], keywords, source: list[Utterance],
                  noise: list[str] | None = None) -> None:
    """Per split: all keyword clips, ceil(10%) silence, ceil(10%) unknowns drawn without
    repetition from the same split's non-keyword, non-silence clips. Training silence is a
    placeholder; validation/test silence is a resolved segment of one of ``noise``."""
    by_split = defaultdict(list)
    for u in source:
        by_split[u.split].append(u)
    for split in SPLITS:
        out = [u for u in rows if u.split == split]
        kw_source = [u for u in by_split[split] if u.label in keywords]
        other_paths = {
            u.path for u in by_split[split] if u.label not in keywords and u.label != SILENCE
        }
        kept = [u for u in out if u.label in keywords]
        assert sorted(u.path for u in kept) == sorted(u.path for u in kw_source)
        silence = [u for u in out if u.label == SILENCE]
        unknown = [u for u in out if u.label == UNKNOWN]
        assert len(out) == len(kept) + len(silence) + len(unknown)
        expected = math.ceil(0.1 * len(kw_source))
        assert len(silence) == expected, split
        if split == "train" or not noise:
            assert all(u.path is None for u in silence)
        else:
            assert all(u.path in noise and 0 <= u.gain <= 1 and u.start_s >= 0
                       for u in silence)
        assert len(unknown) == min(expected, len(other_paths)), split
        assert len({u.path for u in unknown}) == len(unknown)  # no clip drawn twice
        assert {u.path for u in unknown} <= other_paths  # only non-keywords, only this split


def test_open_dataset_speech_commands_default_recipe(fake_sc) -> None:
    root, _ = fake_sc
    ds = open_dataset(DataConfig(str(root)))
    assert ds.labels == [SILENCE, UNKNOWN, *SPEECH_COMMANDS_KEYWORDS]
    assert len(ds.noise_paths) == 2
    assert_recipe(ds.utterances, SPEECH_COMMANDS_KEYWORDS, scan_speech_commands(root),
                  ds.noise_paths)
    summary = ds.summary()
    assert set(summary) == set(SPLITS)
    assert list(summary["train"]) == ds.labels
    # the fake layout's counts: train keywords 6 speakers x 1-2 clips
    n_train_kw = sum(v for k, v in summary["train"].items() if k in SPEECH_COMMANDS_KEYWORDS)
    assert summary["train"][SILENCE] == math.ceil(n_train_kw / 10)


def test_open_dataset_custom_keywords_and_fractions(fake_sc) -> None:
    root, _ = fake_sc
    cfg = DataConfig(str(root), keywords=("cat", "yes"), silence_fraction=0.5, unknown_fraction=1)
    ds = open_dataset(cfg)
    assert ds.labels == [SILENCE, UNKNOWN, "cat", "yes"]
    for split in SPLITS:
        rows = ds.split(split)
        n_kw = sum(u.label in ("cat", "yes") for u in rows)
        assert sum(u.label == SILENCE for u in rows) == math.ceil(0.5 * n_kw)
        assert sum(u.label == UNKNOWN for u in rows) == n_kw
    unknown_words = {Path(u.path).parent.name for u in ds.utterances if u.label == UNKNOWN}
    assert unknown_words and not unknown_words & {"cat", "yes"}


def test_open_dataset_unknown_keyword(fake_sc) -> None:
    root, _ = fake_sc
    with pytest.raises(KwspotError, match="sheila"):
        open_dataset(DataConfig(str(root), keywords=("yes", "sheila")))


def test_open_dataset_empty_keywords_means_every_word(fake_sc) -> None:
    root, _ = fake_sc
    ds = open_dataset(DataConfig(str(root), keywords=()))
    assert ds.labels == sorted(SPEECH_COMMANDS_KEYWORDS + OTHER_WORDS)
    assert not any(u.label in (SILENCE, UNKNOWN) for u in ds.utterances)


def test_open_dataset_missing_path(tmp_path: Path) -> None:
    with pytest.raises(KwspotError, match="not found"):
        open_dataset(DataConfig(str(tmp_path / "nope")))


def test_noise_dir_override(fake_sc, tmp_path: Path) -> None:
    root, _ = fake_sc
    noise = tmp_path / "my_noise"
    write_clip(noise / "fan.wav")
    assert open_dataset(DataConfig(str(root), noise_dir=str(noise))).noise_paths == [
        str(noise / "fan.wav")
    ]
    empty = tmp_path / "empty_noise"
    empty.mkdir()
    with pytest.raises(KwspotError, match=r"no \.wav"):
        open_dataset(DataConfig(str(root), noise_dir=str(empty)))


# --- the recipe on its own -----------------------------------------------------------------------


def synthetic_rows(counts: dict[str, dict[str, int]]) -> list[Utterance]:
    return [
        Utterance(f"{split}/{label}/{i}.wav", label, split, f"{label}{i}")
        for split, per_label in counts.items()
        for label, n in per_label.items()
        for i in range(n)
    ]


def test_recipe_counts_round_up_and_cap_unknown() -> None:
    rows = synthetic_rows(
        {
            "train": {"a": 21, "b": 10, "x": 50, "y": 50},  # 31 keywords -> 4 and 4
            "validation": {"a": 5, "b": 5, "x": 1},  # 10 -> 1 silence, 1 unknown
            "test": {"a": 11, "b": 1, "x": 1, SILENCE: 7},  # 12 -> 2 silence, only 1 unknown
        }
    )
    out, labels = apply_keyword_recipe(rows, ["a", "b"])
    assert labels == [SILENCE, UNKNOWN, "a", "b"]
    counts = {s: Counter(u.label for u in out if u.split == s) for s in SPLITS}
    assert counts["train"] == {"a": 21, "b": 10, SILENCE: 4, UNKNOWN: 4}
    assert counts["validation"] == {"a": 5, "b": 5, SILENCE: 1, UNKNOWN: 1}
    assert counts["test"] == {"a": 11, "b": 1, SILENCE: 2, UNKNOWN: 1}
    test_unknown = [u for u in out if u.split == "test" and u.label == UNKNOWN]
    assert test_unknown[0].path == "test/x/0.wav"  # never a silence row of the source
    assert_recipe(out, {"a", "b"}, rows)


def test_recipe_is_seeded() -> None:
    rows = synthetic_rows({"train": {"a": 40, "x": 100}})
    first, _ = apply_keyword_recipe(rows, ["a"], seed=1)
    again, _ = apply_keyword_recipe(rows, ["a"], seed=1)
    other, _ = apply_keyword_recipe(rows, ["a"], seed=2)
    assert first == again
    assert {u.path for u in first if u.label == UNKNOWN} != {
        u.path for u in other if u.label == UNKNOWN
    }


def test_recipe_skips_split_without_keywords() -> None:
    rows = synthetic_rows({"train": {"a": 3, "x": 3}, "test": {"x": 5}})
    out, _ = apply_keyword_recipe(rows, ["a"])
    assert {u.split for u in out} == {"train"}


def test_recipe_names_missing_keywords() -> None:
    with pytest.raises(KwspotError, match="zebra"):
        apply_keyword_recipe(synthetic_rows({"train": {"a": 1}}), ["a", "zebra"])


# --- folder-per-label ----------------------------------------------------------------------------


def make_label_folder(root: Path, labels=("alpha", "beta", "gamma"), speakers: int = 30) -> None:
    for label in labels:
        for spk in speaker_names(speakers):
            for n in range(2):
                write_clip(root / label / f"{spk}_nohash_{n}.wav", seconds=0.05)
    write_clip(root / "_background_noise_" / "hum.wav")
    write_clip(root / ".hidden" / "x.wav", seconds=0.05)
    (root / "alpha" / "notes.txt").write_text("not audio")
    write_clip(root / "stray_at_top.wav", seconds=0.05)


def assert_speaker_disjoint(rows: list[Utterance]) -> None:
    splits_of = defaultdict(set)
    for u in rows:
        splits_of[u.speaker].add(u.split)
    assert all(len(s) == 1 for s in splits_of.values()), "a speaker is in two splits"


def test_folder_per_label(tmp_path: Path) -> None:
    root = tmp_path / "labels"
    make_label_folder(root)
    rows = scan_folder(root)
    assert len(rows) == 3 * 30 * 2
    assert {u.label for u in rows} == {"alpha", "beta", "gamma"}
    assert all(Path(u.path).suffix == ".wav" for u in rows)
    assert {u.speaker for u in rows} == set(speaker_names(30))
    assert_speaker_disjoint(rows)
    assert {u.split for u in rows} == set(SPLITS)  # 30 speakers: each split gets some
    for u in rows:
        assert u.split == split_for_speaker(u.speaker, 10.0, 10.0)
    assert scan_folder(root) == rows  # stable
    ds = open_dataset(DataConfig(str(root)))
    assert ds.labels == ["alpha", "beta", "gamma"]
    assert [Path(p).name for p in ds.noise_paths] == ["hum.wav"]


def test_folder_forced_split_and_zero_percentages(tmp_path: Path) -> None:
    root = tmp_path / "labels"
    make_label_folder(root, speakers=5)
    assert {u.split for u in scan_folder(root, split="test")} == {"test"}
    assert {u.split for u in scan_folder(root, validation_pct=0, test_pct=0)} == {"train"}


def test_folder_with_keywords_applies_recipe(tmp_path: Path) -> None:
    root = tmp_path / "labels"
    make_label_folder(root)
    ds = open_dataset(DataConfig(str(root), keywords=("beta",)))
    assert ds.labels == [SILENCE, UNKNOWN, "beta"]
    assert_recipe(ds.utterances, {"beta"}, scan_folder(root), ds.noise_paths)


def test_hashed_split_proportions() -> None:
    names = [f"speaker{i}" for i in range(4000)]
    counts = Counter(split_for_speaker(n, 10.0, 20.0) for n in names)
    assert counts["validation"] / 4000 == pytest.approx(0.10, abs=0.02)
    assert counts["test"] / 4000 == pytest.approx(0.20, abs=0.02)
    assert split_for_speaker("speaker7", 10.0, 20.0) == split_for_speaker("speaker7", 10.0, 20.0)


def test_guess_speaker() -> None:
    assert guess_speaker(Path("yes/0a7c2a8d_nohash_0.wav")) == "0a7c2a8d"
    assert guess_speaker(Path("_unknown_/bed_0a7c2a8d_nohash_3.wav")) == "0a7c2a8d"
    assert guess_speaker(Path("x/take_one.wav")) == "take_one"


def test_empty_folder_raises(tmp_path: Path) -> None:
    (tmp_path / "empty" / "label").mkdir(parents=True)
    with pytest.raises(KwspotError, match="no audio"):
        scan_folder(tmp_path / "empty")


# --- flat folder, labels from the file name ------------------------------------------------------


def make_fsdd(root: Path, speakers: int = 24) -> None:
    for digit in range(5):
        for spk in speaker_names(speakers):
            for n in (0, 12):
                write_clip(root / f"{digit}_{spk}_{n}.wav", seconds=0.05)
    write_clip(root / "noise_floor.wav", seconds=0.05)  # does not match the regex
    (root / "3_readme_0.txt").write_text("not audio")


def test_flat_folder_with_label_regex(tmp_path: Path) -> None:
    root = tmp_path / "recordings"
    make_fsdd(root)
    rows = scan_folder(root, FSDD_REGEX)
    assert len(rows) == 5 * 24 * 2
    assert {u.label for u in rows} == {"0", "1", "2", "3", "4"}
    for u in rows:
        name = Path(u.path).name
        assert name.startswith(f"{u.label}_{u.speaker}_")
    assert_speaker_disjoint(rows)
    assert len({u.split for u in rows}) >= 2
    ds = open_dataset(DataConfig(str(root), label_regex=FSDD_REGEX))
    assert ds.labels == ["0", "1", "2", "3", "4"]
    assert ds.noise_paths == []


def test_label_regex_without_speaker_uses_file_stem(tmp_path: Path) -> None:
    root = tmp_path / "recordings"
    make_fsdd(root, speakers=3)
    rows = scan_folder(root, r"^(?P<label>\d)_")
    assert {u.speaker for u in rows} == {Path(u.path).stem for u in rows}


def test_label_regex_errors(tmp_path: Path) -> None:
    root = tmp_path / "recordings"
    make_fsdd(root, speakers=2)
    with pytest.raises(KwspotError, match="label"):
        scan_folder(root, r"^(\d)_")
    with pytest.raises(KwspotError, match="no audio"):
        scan_folder(root, r"^(?P<label>[A-Z])_")
    with pytest.raises(re.error):
        scan_folder(root, r"^(?P<label>\d")


# --- CSV manifests -------------------------------------------------------------------------------


def test_csv_with_split_column_and_relative_paths(tmp_path: Path, monkeypatch) -> None:
    data = tmp_path / "project"
    a = write_clip(data / "audio" / "a.wav")
    b = write_clip(data / "audio" / "b.wav")
    c = write_clip(tmp_path / "elsewhere" / "c.wav")
    manifest = data / "train.csv"
    manifest.write_text(
        "path,label,split,speaker\n"
        "audio/a.wav, yes ,train,ann\n"
        f"audio/b.wav,no,val,bob\n{c},yes,test,\n"
    )
    monkeypatch.chdir(tmp_path / "elsewhere")  # relative to the CSV, not the working dir
    rows = read_csv_manifest(manifest)
    assert rows == [
        Utterance(str(a), "yes", "train", "ann"),
        Utterance(str(b), "no", "validation", "bob"),
        Utterance(str(c), "yes", "test", "c"),
    ]
    assert all(Path(u.path).is_file() for u in rows)


def test_csv_without_split_column_uses_speaker_hash(tmp_path: Path) -> None:
    names = speaker_names(40)
    lines = ["label,path,speaker"] + [
        f"{w},clips/{s}_{w}.wav,{s}" for s in names for w in ("on", "off")
    ]
    manifest = tmp_path / "m.csv"
    manifest.write_text("\n".join(lines) + "\n")
    rows = read_csv_manifest(manifest, validation_pct=20, test_pct=20)
    assert len(rows) == 80
    assert all(u.path == str(tmp_path / "clips" / f"{u.speaker}_{u.label}.wav") for u in rows)
    assert all(u.split == split_for_speaker(u.speaker, 20, 20) for u in rows)
    assert_speaker_disjoint(rows)
    assert {u.split for u in rows} == set(SPLITS)


def test_csv_through_open_dataset(tmp_path: Path) -> None:
    lines = ["path,label,split"] + [
        f"{w}{i}.wav,{w},{s}"
        for s in ("train", "test")
        for w in ("go", "stop", "cat")
        for i in range(10)
    ]
    manifest = tmp_path / "m.csv"
    manifest.write_text("\n".join(lines) + "\n")
    ds = open_dataset(DataConfig(str(manifest), keywords=("go", "stop")))
    assert ds.labels == [SILENCE, UNKNOWN, "go", "stop"]
    assert ds.summary()["test"] == {SILENCE: 2, UNKNOWN: 2, "go": 10, "stop": 10}
    assert open_dataset(DataConfig(str(manifest))).labels == ["cat", "go", "stop"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("file,label\na.wav,yes\n", "header"),
        ("path,word\na.wav,yes\n", "header"),
        ("", "header"),
        ("path,label\n", "no rows"),
        ("path,label,split\na.wav,yes,dev\n", "split"),
    ],
)
def test_csv_errors(tmp_path: Path, text: str, message: str) -> None:
    manifest = tmp_path / "bad.csv"
    manifest.write_text(text)
    with pytest.raises(KwspotError, match=message):
        read_csv_manifest(manifest)


def test_csv_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(KwspotError, match="not found"):
        read_csv_manifest(tmp_path / "none.csv")


def test_csv_short_row_is_a_kwspot_error(tmp_path: Path) -> None:
    manifest = tmp_path / "short.csv"
    manifest.write_text("path,label\na.wav,yes\nb.wav\n")
    with pytest.raises(KwspotError):
        read_csv_manifest(manifest)


def test_csv_with_utf8_bom_header(tmp_path: Path) -> None:
    manifest = tmp_path / "excel.csv"
    manifest.write_text("path,label\na.wav,yes\n", encoding="utf-8-sig")
    assert read_csv_manifest(manifest)[0].label == "yes"


# --- JSONL manifests -----------------------------------------------------------------------------


def test_jsonl_round_trip(tmp_path: Path) -> None:
    rows = [
        Utterance("/data/yes/a_nohash_0.wav", "yes", "train", "a"),
        Utterance(None, SILENCE, "validation"),
        Utterance('/data/ünïcode, "quoted".wav', UNKNOWN, "test", "spk 2"),
    ]
    path = tmp_path / "sub" / "manifest.jsonl"
    write_manifest(path, rows)
    assert len(path.read_text().splitlines()) == 3
    assert read_manifest(path) == rows


def test_jsonl_skips_blank_lines_and_names_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    write_manifest(path, [Utterance("a.wav", "yes", "train")])
    path.write_text(path.read_text() + "\n\n")
    assert len(read_manifest(path)) == 1
    path.write_text(path.read_text() + '{"path": "b.wav", "label": "no"}\n')  # no split
    with pytest.raises(KwspotError, match=r"m\.jsonl:4"):
        read_manifest(path)
    path.write_text("not json\n")
    with pytest.raises(KwspotError, match=r":1:"):
        read_manifest(path)


def test_a_bare_manifest_with_noise_cut_silence_needs_its_noise(tmp_path: Path) -> None:
    """Outside its prepared folder a manifest lists no noise files; its path-less _silence_
    rows would silently become digital zeros, so that is one clear error instead."""
    path = tmp_path / "m.jsonl"
    write_manifest(path, [Utterance(str(tmp_path / "a.wav"), "yes", "train", "a"),
                          Utterance(None, SILENCE, "train")])
    with pytest.raises(KwspotError, match="give --noise-dir DIR"):
        open_dataset(DataConfig(path=str(path)))
    noise = tmp_path / "noise"
    noise.mkdir()
    sf.write(noise / "hum.wav", np.zeros(16000, np.float32), 16000)
    dataset = open_dataset(DataConfig(path=str(path), noise_dir=str(noise)))
    assert dataset.noise_paths == [str(noise / "hum.wav")]
    write_manifest(path, [Utterance(str(tmp_path / "a.wav"), "yes", "train", "a")])
    assert open_dataset(DataConfig(path=str(path))).labels == ["yes"]  # nothing to cut


# --- real data -----------------------------------------------------------------------------------


def test_real_speech_commands_lite(shared_dataset) -> None:
    root = shared_dataset("speech_commands_lite")
    ds = open_dataset(DataConfig(str(root)))
    assert ds.labels == [SILENCE, UNKNOWN, *SPEECH_COMMANDS_KEYWORDS]
    assert len(ds.noise_paths) == 6
    summary = ds.summary()
    assert set(summary) == set(SPLITS)
    for split, (low, high) in {
        "train": (205, 245),  # README says 213-237; the data has 211 ("right") to 237 ("up")
        "validation": (55, 80),
        "test": (55, 80),
    }.items():
        counts = summary[split]
        for word in SPEECH_COMMANDS_KEYWORDS:
            assert low <= counts[word] <= high, (split, word, counts[word])
        n_kw = sum(counts[w] for w in SPEECH_COMMANDS_KEYWORDS)
        assert counts[SILENCE] == counts[UNKNOWN] == math.ceil(0.1 * n_kw)
    n_val = sum(summary["validation"][w] for w in SPEECH_COMMANDS_KEYWORDS)
    assert n_val / 10 == pytest.approx(68, abs=3)  # "~68 per keyword in validation"
    assert_recipe(ds.utterances, SPEECH_COMMANDS_KEYWORDS, scan_speech_commands(root),
                  ds.noise_paths)
    assert_speaker_disjoint([u for u in ds.utterances if u.speaker and u.label != SILENCE])


def test_real_speech_commands_lite_test_folder(shared_dataset) -> None:
    root = shared_dataset("speech_commands_lite_test")
    ds = open_dataset(DataConfig(str(root)))
    assert set(ds.labels) == {SILENCE, UNKNOWN, *SPEECH_COMMANDS_KEYWORDS}
    assert len(ds.labels) == 12
    assert len(ds.utterances) == 816
    assert len(scan_folder(root, split="test")) == 816


def test_real_fsdd_with_label_regex(shared_dataset) -> None:
    root = shared_dataset("fsdd/recordings")
    ds = open_dataset(DataConfig(str(root), label_regex=FSDD_REGEX))
    assert ds.labels == [str(d) for d in range(10)]
    assert len(ds.utterances) == 2500
    assert len({u.speaker for u in ds.utterances}) == 5
    assert_speaker_disjoint(ds.utterances)
