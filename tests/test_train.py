"""Training really learns, a seed repeats a run, and an interrupted run resumes exactly."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from conftest import TINY_KEYWORDS, tiny_train_config

from kwspot.datasets import DataConfig
from kwspot.errors import KwspotError
from kwspot.training.loop import train


def test_training_beats_chance_by_a_wide_margin(tiny_run: tuple[Path, dict]) -> None:
    _run_dir, summary = tiny_run
    n_classes = len(TINY_KEYWORDS) + 2
    assert summary["labels"] == ["_silence_", "_unknown_", *TINY_KEYWORDS]
    # chance is 1/5 (the largest class is about 1/4); demand 3.5x that. Measured here:
    # ~0.9-0.97 depending on thread count, on ~60 validation and ~60 test clips.
    assert summary["val_accuracy"] > 0.7, summary
    assert summary["test_accuracy"] > 0.7, summary
    assert summary["val_accuracy"] > 3.5 / n_classes


def test_run_directory_describes_itself(tiny_run: tuple[Path, dict]) -> None:
    run_dir, summary = tiny_run
    for name in ("config.json", "best.pt", "last.pt", "metrics.jsonl", "summary.json"):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "tb").glob("events.out.tfevents.*")), "no TensorBoard log"
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [100, 200, 300]
    assert [r["lr"] for r in rows] == [0.1, 0.01, 0.001]  # 10k/20k of 30k, scaled
    best = max(rows, key=lambda r: r["val_accuracy"])
    assert summary["best_step"] == best["step"]
    record = torch.load(run_dir / "best.pt", weights_only=False)
    assert record["step"] == best["step"] and record["model_name"] == "tc-resnet8"


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "last.pt", weights_only=False)["state_dict"]


def test_same_seed_same_run_and_resume_is_exact(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = dataclasses.replace(tiny_train_config(tiny_dataset, steps=40), eval_every=20,
                              threads=1)
    train(cfg, tmp_path / "a", quiet=True)
    train(cfg, tmp_path / "b", quiet=True)
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a), "same seed gave different weights"

    # press Ctrl-C (SIGINT) in the middle of step 26 of a third run, then resume it
    import os
    import signal

    import kwspot.training.loop as train_module

    real_augment = train_module.augment_batch
    calls = {"n": 0}

    def augment_then_interrupt(*args: object, **kwargs: object) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 26:
            os.kill(os.getpid(), signal.SIGINT)
        return real_augment(*args, **kwargs)

    monkeypatch.setattr(train_module, "augment_batch", augment_then_interrupt)
    # whatever the handler was (a shell without job control starts background jobs with
    # SIGINT ignored), training must put it back
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KwspotError, match=r"interrupted at step 26.*--resume"):
        train(cfg, tmp_path / "c", quiet=True)
    assert torch.load(tmp_path / "c" / "last.pt", weights_only=False)["step"] == 26
    assert signal.getsignal(signal.SIGINT) is before  # handler restored
    monkeypatch.setattr(train_module, "augment_batch", real_augment)

    summary = train(None, tmp_path / "c", resume=True, quiet=True)
    assert summary["steps"] == 40
    c = _weights(tmp_path / "c")
    assert all(torch.equal(a[k], c[k]) for k in a), "resumed run differs from uninterrupted run"
    logged = [json.loads(line)["step"] for line in (tmp_path / "c" / "metrics.jsonl").open()]
    assert logged == [20, 40]


def test_refuses_to_overwrite_or_resume_nothing(tiny_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(KwspotError, match="nothing to resume"):
        train(None, tmp_path / "empty", resume=True)
    cfg = dataclasses.replace(tiny_train_config(tiny_dataset, steps=4), eval_every=2, threads=1)
    train(cfg, tmp_path / "run", quiet=True)
    with pytest.raises(KwspotError, match="already holds a run"):
        train(cfg, tmp_path / "run", quiet=True)


def test_bad_files_are_reported_and_skipped(tiny_dataset: Path, tmp_path: Path) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    (data / "yes" / "broken.wav").write_bytes(b"RIFF\x00\x00not audio at all")
    (data / "no" / "empty.wav").write_bytes(b"")
    cfg = dataclasses.replace(tiny_train_config(data, steps=2), eval_every=2, threads=1)
    from kwspot.clips import load_labelled
    from kwspot.datasets import open_dataset

    dataset = open_dataset(cfg.data)
    clips = load_labelled(dataset.utterances, dataset.labels, 16000)
    bad = "\n".join(clips.bad_files)
    assert "broken.wav" in bad and "empty.wav" in bad
    assert len(clips) == len(dataset.utterances) - 2
    train(cfg, tmp_path / "run", quiet=True)  # and training goes on without them


def test_run_directory_is_prepared_data_with_the_same_clips(tiny_run, tiny_dataset) -> None:
    from kwspot.datasets import open_dataset

    run_dir, summary = tiny_run
    fresh = open_dataset(tiny_train_config(tiny_dataset).data)
    for data in (run_dir, run_dir / "manifest.jsonl"):  # the folder or its manifest
        again = open_dataset(DataConfig(path=str(data)))
        assert again.utterances == fresh.utterances  # paths resolved back to the data
        assert again.labels == summary["labels"]  # in the model's order
        assert again.noise_paths == fresh.noise_paths  # noise kept
        assert again.checksum == fresh.checksum == summary["data_checksum"]


def test_one_training_process_per_run_directory(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from kwspot.training.loop import run_lock

    with run_lock(tmp_path / "run"):
        assert (tmp_path / "run" / "train.lock").read_text().split()[0] == str(os.getpid())
        with pytest.raises(KwspotError, match=r"in use by training process .* delete"):
            train(None, tmp_path / "run", resume=False)
    assert not (tmp_path / "run" / "train.lock").exists()
    # a lock left behind by a process that has died is taken over
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (tmp_path / "run" / "train.lock").write_text(dead)
    with run_lock(tmp_path / "run"):
        pass
    # an empty lock (a kill between create and write), or a live PID whose start time does
    # not match (the PID was reused by another process), is stale too
    for stale in ("", f"{os.getpid()} 1"):
        (tmp_path / "run" / "train.lock").write_text(stale)
        with run_lock(tmp_path / "run"):
            pass


def test_resume_survives_a_truncated_metrics_line_and_fresh_runs_start_clean(
        tiny_dataset: Path, tmp_path: Path) -> None:
    cfg = dataclasses.replace(tiny_train_config(tiny_dataset, steps=8), eval_every=4, threads=1)
    cfg = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, steps=4))
    train(cfg, tmp_path / "run", quiet=True)
    metrics = tmp_path / "run" / "metrics.jsonl"
    metrics.write_text(metrics.read_text() + '{"step": 8, "val_acc')  # killed mid-write
    longer = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, steps=8))
    longer.save(tmp_path / "run" / "config.json")
    train(None, tmp_path / "run", resume=True, quiet=True)
    assert [json.loads(x)["step"] for x in metrics.read_text().splitlines()] == [4, 8]
    # a run killed before its first checkpoint left rows; a fresh run does not append to them
    (tmp_path / "fresh").mkdir()
    (tmp_path / "fresh" / "metrics.jsonl").write_text('{"step": 4}\n')
    train(cfg, tmp_path / "fresh", quiet=True)
    assert [json.loads(x)["step"] for x in
            (tmp_path / "fresh" / "metrics.jsonl").read_text().splitlines()] == [4]


@pytest.mark.parametrize("change", [{"eval_every": 0}, {"dropout": 2.0}, {"threads": -1},
                                    {"device": "gpu"}, {"device": "cuda:x"}])
def test_bad_training_settings_are_one_line_errors(tiny_dataset: Path, change: dict) -> None:
    with pytest.raises(KwspotError):
        dataclasses.replace(tiny_train_config(tiny_dataset), **change)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_cuda_without_a_gpu_is_refused_before_training(tiny_dataset: Path,
                                                       tmp_path: Path) -> None:
    cfg = dataclasses.replace(tiny_train_config(tiny_dataset, steps=4), device="cuda")
    with pytest.raises(KwspotError, match="no CUDA device"):
        train(cfg, tmp_path / "run", quiet=True)
    assert not (tmp_path / "run" / "config.json").exists()  # refused before anything
    # a resumed run moves to the device it is given (a CPU run asked onto CUDA here)
    cpu = dataclasses.replace(cfg, device="cpu", eval_every=2, threads=1)
    train(cpu, tmp_path / "cpu", quiet=True)
    with pytest.raises(KwspotError, match="no CUDA device"):
        train(None, tmp_path / "cpu", resume=True, quiet=True, device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_resumes_exactly_and_its_checkpoints_load_on_the_cpu(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    from kwspot.checkpoint import load_classifier, load_record

    cfg = dataclasses.replace(tiny_train_config(tiny_dataset, steps=40), eval_every=20,
                              threads=1, device="cuda")
    torch.use_deterministic_algorithms(True, warn_only=False)
    try:
        whole = train(cfg, tmp_path / "a", quiet=True)
        half = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, steps=20))
        train(half, tmp_path / "b", quiet=True)
        cfg.save(tmp_path / "b" / "config.json")  # the same run, continued to 40 steps
        (tmp_path / "b" / "summary.json").unlink()
        resumed = train(None, tmp_path / "b", resume=True, quiet=True)
    finally:
        torch.use_deterministic_algorithms(False)
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(v.device.type == "cpu" for v in a.values())
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed CUDA run differs"
    assert resumed["test_accuracy"] == whole["test_accuracy"]
    model, _ = load_classifier(tmp_path / "a" / "best.pt")  # a CPU model from a CUDA run
    assert next(model.parameters()).device.type == "cpu"
    assert load_record(tmp_path / "a" / "last.pt")["cuda_rng"] is not None
