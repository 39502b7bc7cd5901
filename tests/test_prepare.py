"""`kwspot prepare`: one fixed manifest per dataset, so every model and seed sees the same test
clips, and every report can name the data it was measured on by its checksum."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_datasets import make_speech_commands, speaker_names, write_clip

from kwspot.cli import main
from kwspot.data import SILENCE, UNKNOWN
from kwspot.datasets import DataConfig, default_eval_split, open_dataset
from kwspot.datasets.folder import scan_folder, split_speakers
from kwspot.datasets.prepare import MANIFEST, load_prepared, prepare_dataset
from kwspot.errors import KwspotError


@pytest.fixture
def sc(tmp_path: Path) -> Path:
    root = tmp_path / "sc"
    make_speech_commands(root)
    return root


def test_prepared_data_is_the_recipe_resolved_once(sc: Path, tmp_path: Path) -> None:
    info = prepare_dataset(DataConfig(str(sc)), tmp_path / "prep")
    raw = open_dataset(DataConfig(str(sc)))
    prepared = open_dataset(DataConfig(str(tmp_path / "prep")))
    assert prepared.utterances == raw.utterances and prepared.labels == raw.labels
    assert prepared.noise_paths == raw.noise_paths
    assert prepared.checksum == raw.checksum == info["checksum"]
    # evaluation silence is named noise segments, training silence is drawn per batch
    for u in prepared.utterances:
        if u.label == SILENCE:
            assert (u.path is None) == (u.split == "train")
    # again: a no-op; another recipe into the same folder needs --force
    assert prepare_dataset(DataConfig(str(sc)), tmp_path / "prep")["checksum"] == info["checksum"]
    other = DataConfig(str(sc), unknown_fraction=0.5)
    with pytest.raises(KwspotError, match="other prepared data"):
        prepare_dataset(other, tmp_path / "prep")
    assert prepare_dataset(other, tmp_path / "prep", force=True)["checksum"] != info["checksum"]


def test_test_set_does_not_move_with_training_data_or_seeds(sc: Path) -> None:
    def test_rows(cfg: DataConfig) -> list:
        return [u for u in open_dataset(cfg).utterances if u.split != "train"]

    before = test_rows(DataConfig(str(sc)))
    for word in ("cat", "tree", "yes"):  # new training clips, of keywords and other words
        for n in range(5):
            write_clip(sc / word / f"abcdef{n:02d}_nohash_0.wav", seconds=0.05)
    after = open_dataset(DataConfig(str(sc)))
    assert [u for u in after.utterances if u.split != "train"] == before
    assert sum(u.split == "train" for u in after.utterances) > 0
    # the draw is the data seed's, not the training seed's: other data seeds draw others
    assert test_rows(DataConfig(str(sc), seed=1)) != before


def test_checksum_is_the_same_wherever_the_data_lives(sc: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(sc, moved)
    assert open_dataset(DataConfig(str(moved))).checksum == open_dataset(
        DataConfig(str(sc))).checksum


def test_edited_or_orphaned_prepared_data_is_refused(sc: Path, tmp_path: Path) -> None:
    prep = tmp_path / "prep"
    prepare_dataset(DataConfig(str(sc)), prep)
    lines = (prep / MANIFEST).read_text().splitlines()
    (prep / MANIFEST).write_text("\n".join(lines[1:]) + "\n")
    with pytest.raises(KwspotError, match="checksum"):
        load_prepared(prep)
    (prep / MANIFEST).write_text("\n".join(lines) + "\n")
    with pytest.raises(KwspotError, match="prepared data with labels"):
        open_dataset(DataConfig(str(prep), keywords=("yes", "no")))
    shutil.move(sc, tmp_path / "gone")
    with pytest.raises(KwspotError, match="not there"):
        load_prepared(prep)
    assert len(load_prepared(prep, root=tmp_path / "gone").utterances) == len(lines)
    with pytest.raises(KwspotError, match="already prepared"):
        prepare_dataset(DataConfig(str(prep)), tmp_path / "again")


def test_prepared_data_refuses_recipe_options_and_follows_moved_data(sc: Path,
                                                                     tmp_path: Path) -> None:
    prep = tmp_path / "prep"
    prepare_dataset(DataConfig(str(sc)), prep)
    with pytest.raises(KwspotError, match="--unknown-fraction"):
        open_dataset(DataConfig(str(prep), unknown_fraction=0.5))
    with pytest.raises(KwspotError, match="--negatives"):
        open_dataset(DataConfig(str(prep), negatives=(str(sc / "cat"),)))
    moved = tmp_path / "moved"
    shutil.move(sc, moved)
    info = prepare_dataset(DataConfig(str(moved)), prep)  # the same data: only the root moves
    assert info["root"] == str(moved.resolve())
    assert len(load_prepared(prep).utterances) > 0


def test_silence_without_noise_files_is_fixed_by_the_prepared_seed(tmp_path: Path) -> None:
    from kwspot.evaluate.clips import evaluation_clips

    for word in ("yes", "no", "cat"):
        for n in range(6):
            write_clip(tmp_path / "data" / word / f"s{n}x_nohash_0.wav", seconds=0.05)
    cfg = DataConfig(str(tmp_path / "data"), keywords=("yes", "no"), validation_pct=30,
                     test_pct=30)
    info = prepare_dataset(cfg, tmp_path / "prep")
    labels = info["labels"]
    prepared = DataConfig(str(tmp_path / "prep"))
    a, _ = evaluation_clips(labels, 16000, 16000, prepared, "test", seed=0)
    b, _ = evaluation_clips(labels, 16000, 16000, prepared, "test", seed=1)
    assert a.is_silence.any() and np.array_equal(a.audio, b.audio)
    other = prepare_dataset(DataConfig(**{**cfg.__dict__, "seed": 1}), tmp_path / "prep1")
    assert other["checksum"] != info["checksum"]  # the seed fills those rows: it counts


def test_small_speaker_sets_still_get_three_speaker_disjoint_splits(tmp_path: Path) -> None:
    names = speaker_names(5)
    for i, spk in enumerate(names):
        for digit in range(3):
            write_clip(tmp_path / "flat" / f"{digit}_{spk}_{i}.wav", seconds=0.05)
    rows = scan_folder(tmp_path / "flat", r"^(?P<label>\d)_(?P<speaker>[a-z]+)_")
    by_split: dict[str, set[str]] = {}
    for u in rows:
        by_split.setdefault(u.split, set()).add(u.speaker)
    assert {k: len(v) for k, v in by_split.items()} == {"train": 3, "validation": 1, "test": 1}
    # many speakers keep the stable hash (adding one never moves the others)
    many = speaker_names(200)
    assert split_speakers(set(many), 10, 10) == split_speakers(set(many[:199]), 10, 10) | {
        many[199]: split_speakers(set(many), 10, 10)[many[199]]}
    # too few to hold any out: all train, and training says why
    assert set(split_speakers({"a", "b"}, 10, 10).values()) == {"train"}


def test_cli_prepare_then_eval_auto_uses_its_test_split(sc: Path, tmp_path: Path,
                                                       capsys) -> None:
    assert main(["prepare", "--data", str(sc), "--out", str(tmp_path / "p")]) == 0
    out = capsys.readouterr().out
    info = json.loads((tmp_path / "p" / "prepared.json").read_text())
    assert info["checksum"] in out and info["labels"][:2] == [SILENCE, UNKNOWN]
    assert default_eval_split(DataConfig(str(tmp_path / "p"))) == "test"
    assert default_eval_split(DataConfig(str(sc))) == "test"
    flat = tmp_path / "labels"
    write_clip(flat / "yes" / "a.wav")
    assert default_eval_split(DataConfig(str(flat))) == "all"
    assert main(["prepare", "--data", str(tmp_path / "nowhere"), "--out",
                 str(tmp_path / "q")]) == 1
    assert "dataset not found" in capsys.readouterr().err
