"""One table job: a model trained with its recipe and one seed on prepared data, then scored
on the test split. A job is independent and idempotent: its small result file (committed
under ``docs/results/``) says it is done; an interrupted job resumes from its run directory."""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kwspot.errors import KwspotError
from kwspot.fileio import atomic_write_text


@dataclass(frozen=True)
class Job:
    model: str
    seed: int
    epochs: float | None = None  # None: the recipe's

    @property
    def name(self) -> str:
        """``<model>-seed<k>``, or ``<model>-e<epochs>-seed<k>`` with a length other than the
        recipe's (a different job: its own result file and run directory)."""
        length = "" if self.epochs in (None, self.recipe_epochs) else f"-e{self.epochs:g}"
        return f"{self.model}{length}-seed{self.seed}"

    @property
    def recipe_epochs(self) -> float:
        from kwspot.training.recipes import recipe_for

        return recipe_for(self.model).epochs

    @property
    def planned_epochs(self) -> float:
        return self.recipe_epochs if self.epochs is None else self.epochs


@dataclass(frozen=True)
class JobResult:
    job: Job
    path: Path
    record: dict[str, Any]


def result_path(results_dir: str | Path, job: Job) -> Path:
    return Path(results_dir) / f"{job.name}.json"


def _validation_curve(run_dir: Path) -> list[list[float]]:
    rows = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        rows.append([row["step"], round(row["val_accuracy"], 5), round(row["val_loss"], 5)])
    return rows


def _device_name(device: str) -> str:
    """What trained the job, e.g. "cuda (NVIDIA H200, torch 2.11.0+cu130)"."""
    import torch

    if device.startswith("cuda"):
        kind = torch.cuda.get_device_name(torch.device(device))
    else:
        kind = platform.processor() or platform.machine()
    return f"{device.partition(':')[0]} ({kind}, torch {torch.__version__})"


def write_result(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")


def run_job(job: Job, prepared: str | Path, results_dir: str | Path, runs_dir: str | Path,
            threads: int = 1, quiet: bool = True, device: str = "cpu") -> JobResult:
    """Train (or resume, or skip when its result exists) and write the result. The test score
    is the one training computes at its end (``kwspot eval RUN --split test``), not a second
    decode and scoring of the test split."""

    from kwspot.checkpoint import load_classifier
    from kwspot.datasets import DataConfig, open_dataset
    from kwspot.datasets.prepare import is_prepared
    from kwspot.profile import count_flops, count_parameters
    from kwspot.training.config import TrainConfig
    from kwspot.training.loop import train
    from kwspot.training.recipes import recipe_config

    out = result_path(results_dir, job)
    if out.is_file():
        return JobResult(job, out, json.loads(out.read_text()))
    if not is_prepared(prepared):
        raise KwspotError(f"{prepared}: not prepared data; run `kwspot prepare` first")
    data = DataConfig(path=str(prepared))
    dataset = open_dataset(data)
    if not dataset.split("test"):
        raise KwspotError(f"{prepared}: no test split to score the table on")
    train_clips = len(dataset.split("train"))
    run_dir = Path(runs_dir) / dataset.checksum[:12] / job.name
    cfg = recipe_config(job.model, data, train_clips, job.seed, job.epochs, threads=threads,
                        device=device)
    if (run_dir / "config.json").is_file():  # a run folder left from another length?
        started = TrainConfig.load(run_dir / "config.json").optim.steps
        if started != cfg.optim.steps:
            raise KwspotError(f"{run_dir}: a run of {started} steps, but this job trains "
                              f"{cfg.optim.steps} ({job.planned_epochs:g} epochs); rename or "
                              "delete the folder")
    if (run_dir / "summary.json").is_file():
        summary = json.loads((run_dir / "summary.json").read_text())
    elif (run_dir / "last.pt").is_file():
        summary = train(None, run_dir, resume=True, quiet=quiet, device=device)
    else:
        summary = train(cfg, run_dir, quiet=quiet)
    trained = TrainConfig.load(run_dir / "config.json")  # what the run really used
    model, _ = load_classifier(run_dir / "best.pt")
    features = model.features
    record = {
        "model": job.model, "seed": job.seed, "data": str(prepared),
        "data_checksum": dataset.checksum,
        "test_accuracy": summary["test_accuracy"], "test_clips": summary["test_clips"],
        "val_accuracy": summary["val_accuracy"], "best_step": summary["best_step"],
        "steps": summary["steps"],
        "epochs": summary["steps"] * trained.optim.batch_size / max(1, train_clips),
        "train_seconds": summary["train_seconds"], "threads": threads,
        "params": count_parameters(model.network),
        "flops": count_flops(model.network, (features.num_channels, features.num_frames)),
        "features": {"kind": features.kind, "channels": features.num_channels,
                     "frames": features.num_frames, "window_ms": features.window_ms,
                     "hop_ms": features.hop_ms},
        "validation_curve": _validation_curve(run_dir),
        "device": _device_name(trained.device),
    }
    write_result(out, record)
    return JobResult(job, out, record)
