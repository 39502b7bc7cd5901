"""Checkpoints are data, never code: a crafted file is refused without running anything, a
truncated one gives one clear line, and writes are atomic."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kwspot.checkpoint import load_classifier, load_record, save_record
from kwspot.errors import KwspotError


class Payload:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_crafted_checkpoint_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "best.pt"
    torch.save({"state_dict": {}, "model_name": "tc-resnet8", "x": Payload(marker)}, evil)
    assert not marker.exists()
    for load in (load_record, load_classifier):
        with pytest.raises(KwspotError, match="refused"):
            load(evil)
    assert not marker.exists()
    # and plain pickle, the old way, would have run it: the test really tests something
    torch.load(evil, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", b"PK\x03\x04truncated"])
def test_corrupt_checkpoints_give_one_clear_line(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "last.pt"
    path.write_bytes(content)
    with pytest.raises(KwspotError, match=r"last\.pt"):
        load_record(path)


def test_truncated_real_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "best.pt"
    save_record({"state_dict": {"w": torch.zeros(1000)}}, path)
    assert load_record(path)["state_dict"]["w"].shape == (1000,)
    path.write_bytes(path.read_bytes()[:-300])
    with pytest.raises(KwspotError, match="corrupt or truncated"):
        load_record(path)


def test_save_is_atomic_and_leaves_no_temp_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "best.pt"
    save_record({"state_dict": {"v": torch.ones(3)}}, path)

    def dies(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", dies)
    with pytest.raises(OSError):
        save_record({"state_dict": {"v": torch.zeros(3)}}, path)
    assert list(tmp_path.iterdir()) == [path]  # the old file survives, no temp left
    assert load_record(path)["state_dict"]["v"].sum() == 3


def test_a_run_without_best_pt_says_why(tmp_path: Path) -> None:
    from kwspot.cli import main

    (tmp_path / "config.json").write_text("{}")
    for command in (["export", str(tmp_path)], ["eval", str(tmp_path), "--data", "."]):
        with pytest.raises(KwspotError, match=r"no checkpoint yet.*first evaluation"):
            main(["--debug", *command])
