"""``kwspot table``: the TC-ResNet paper's comparison, run here. Every (model, seed) job trains
on one prepared manifest and writes a small result file; the table is computed from those
files, so it can be built in pieces, resumed, limited to some models, and spread over a Ray
cluster (``kwspot[scale]``) without changing anything else."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kwspot.errors import KwspotError, TrainingInterrupted
from kwspot.experiments.jobs import Job, JobResult, result_path, run_job, write_result
from kwspot.experiments.latency import measure_latency
from kwspot.fileio import atomic_write_text

# The TC-ResNet paper's Table 1 (Speech Commands v0.01, full data; Pixel 1, TFLite) and Table
# 2 (ablation), and BC-ResNet's paper: (accuracy %, ms, FLOPs, params). None: not reported.
PAPER: dict[str, tuple[float | None, float | None, float | None, float | None]] = {
    "cnn-trad-fpool3": (90.7, 32, 76.1e6, 524e3),
    "cnn-one-fstride4": (84.6, 1.2, 1.5e6, 148e3),
    "ds-cnn-s": (94.4, 1.6, 5.4e6, 24e3),
    "ds-cnn-m": (94.9, 5.2, 19.8e6, 140e3),
    "ds-cnn-l": (95.4, 16.8, 56.9e6, 420e3),
    "res8-narrow": (90.1, 47, 143.2e6, 20e3),
    "res8": (94.1, 174, 795.3e6, 111e3),
    "res15-narrow": (94.0, 107, 348.7e6, 43e3),
    "res15": (95.8, 424, 1950.0e6, 239e3),
    "tc-resnet8": (96.1, 1.1, 3.0e6, 66e3),
    "tc-resnet8-ref": (96.1, 1.1, 3.0e6, 66e3),  # the authors' code: what the paper ran
    "tc-resnet8-1.5": (96.2, 2.8, 6.6e6, 145e3),
    "tc-resnet14": (96.2, 2.5, 6.1e6, 137e3),
    "tc-resnet14-1.5": (96.6, 5.7, 13.4e6, 305e3),
    "tc-resnet8-2d": (None, None, 35.8e6, 66e3),
    "tc-resnet8-2d-pool": (None, None, 4.0e6, 66e3),
    "bc-resnet-1": (96.6, None, None, 9.2e3),
    "bc-resnet-3": (97.6, None, None, 54e3),
    "bc-resnet-8": (98.0, None, None, 321e3),
}
TABLE_MODELS = tuple(PAPER)
FAMILIES = ["tc", "cnn", "ds", "res8", "res15", "bc"]


@dataclass(frozen=True)
class TableConfig:
    prepared: str
    results_dir: str = "docs/results/table"
    runs_dir: str = "runs/table"
    models: tuple[str, ...] = TABLE_MODELS
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: dict[str, float] = field(default_factory=dict)  # per-model override
    threads: int = 1  # per job
    device: str = "cpu"  # where jobs train
    workers: int = 1  # jobs side by side in local processes
    latency_runs: int = 1000
    ray: bool = False
    ray_address: str | None = None
    remeasure_latency: bool = False  # time every model again (e.g. on a quiet machine)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"cpu|cuda(:\d+)?", self.device):
            raise KwspotError(f"--device must be cpu, cuda or cuda:N, got {self.device!r}")
        if self.workers < 1 or self.threads < 1:
            raise KwspotError("--workers and --threads must be at least 1")


def _jobs(cfg: TableConfig) -> list[Job]:
    from kwspot.models import MODELS

    unknown = [m for m in cfg.models if m not in MODELS]
    if unknown:
        raise KwspotError(f"unknown models {unknown}; available: {', '.join(sorted(MODELS))}")
    stray = [m for m in cfg.epochs if m not in cfg.models]
    if stray:
        raise KwspotError(f"--epochs names models not in the table: {', '.join(stray)}")
    return [Job(m, s, cfg.epochs.get(m)) for m in cfg.models for s in cfg.seeds]


def run_jobs(cfg: TableConfig, jobs: Sequence[Job],
             report: Callable[[JobResult], None] = lambda r: None) -> list[str]:
    """Each job in this process, or as Ray tasks (local Ray, or ``ray_address``). A failing
    job does not stop the others; returns "job: error" for each failure."""
    args = [str(Path(p).resolve()) for p in (cfg.prepared, cfg.results_dir, cfg.runs_dir)]
    options = {"threads": cfg.threads, "device": cfg.device}
    failures: list[str] = []
    if not (cfg.ray or cfg.ray_address) and cfg.workers == 1:
        for job in jobs:
            try:
                report(run_job(job, *args, **options))
            except TrainingInterrupted:
                raise  # Ctrl-C stops the table, not just the job in hand
            except KwspotError as exc:
                failures.append(f"{job.name}: {exc}")
        return failures
    if not (cfg.ray or cfg.ray_address):
        return _run_in_processes(cfg.workers, jobs, args, options, report)
    try:
        import ray
    except ImportError:
        raise KwspotError("--ray needs the scale extra: pip install 'kwspot[scale]'") from None
    if not ray.is_initialized():
        ray.init(address=cfg.ray_address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    # a CUDA job takes an equal share of one GPU, so up to --workers of them share it
    gpus = 1 / cfg.workers if cfg.device.startswith("cuda") else 0
    if gpus:  # Ray shows each task only the GPU it assigned, as cuda:0
        options["device"] = "cuda"
    remote = ray.remote(num_cpus=cfg.threads, num_gpus=gpus)(run_job)
    pending = {remote.remote(job, *args, **options): job for job in jobs}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        job = pending.pop(done[0])
        try:
            result = ray.get(done[0])
        except Exception as exc:  # a task's error, whatever it was, is that job's failure
            failures.append(f"{job.name}: {str(exc).strip().splitlines()[-1]}")
            continue
        # the driver writes the record too: on a cluster the worker's disk is not ours
        path = result_path(cfg.results_dir, job)
        if not path.is_file():
            write_result(path, result.record)
        report(result)
    return failures


def _run_in_processes(workers: int, jobs: Sequence[Job], args: list[str],
                      options: dict[str, Any], report: Callable[[JobResult], None]) -> list[str]:
    """Jobs in a pool of fresh ("spawn") processes; each writes its own result file."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    failures: list[str] = []
    context = multiprocessing.get_context("spawn")  # no forked torch/CUDA state
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending = {pool.submit(run_job, job, *args, **options): job for job in jobs}
        try:
            for done in as_completed(pending):
                job = pending[done]
                try:
                    result = done.result()
                except TrainingInterrupted:
                    raise
                except Exception as exc:  # a job's error, whatever it was, is its failure
                    message = str(exc).strip().splitlines()
                    failures.append(f"{job.name}: "
                                    f"{message[-1] if message else type(exc).__name__}")
                    continue
                report(result)
        except (TrainingInterrupted, KeyboardInterrupt):
            # Ctrl-C reached the workers too: running jobs save their state and stop; jobs
            # not yet started are dropped rather than started
            for future in pending:
                future.cancel()
            raise
    return failures


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample std; no std from one seed (0.00 would claim a spread never seen)."""
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else None


def late_change(curve: list[list[float]]) -> float | None:
    """Converged? Mean validation accuracy (pp) of the last quarter of the evaluations minus
    that of the quarter before: near zero when the curve has gone flat."""
    acc = [row[1] for row in curve]
    quarter = len(acc) // 4
    if quarter < 1:
        return None
    return 100 * (float(np.mean(acc[-quarter:])) - float(np.mean(acc[-2 * quarter:-quarter])))


def _checked_record(path: Path, job: Job) -> dict[str, Any]:
    """A result file, refused when it was trained for another length than the job's (a file
    left from an earlier recipe would otherwise pass for this one)."""
    record = json.loads(path.read_text())
    planned = job.planned_epochs
    if not isinstance(record.get("epochs"), (int, float)) or \
            not isinstance(record.get("steps"), int) or record["steps"] < 1:
        raise KwspotError(f"{path}: no epochs and steps recorded; not a table result")
    one_step = record["epochs"] / record["steps"]  # steps round up to whole batches
    if abs(record["epochs"] - planned) > max(0.02 * planned, one_step):
        trained = float(f"{record['epochs']:.3g}")
        raise KwspotError(f"{path}: trained for {record['epochs']:.4g} epochs, but "
                          f"{job.model}'s table job is {planned:g}; rename it to "
                          f"{job.model}-e{trained:g}-seed{job.seed}.json or delete it")
    return record


def model_records(cfg: TableConfig, model: str) -> list[dict[str, Any]]:
    """The result files of ``model``'s jobs (its seeds, at the table's length) present."""
    return [_checked_record(p, job) for s in cfg.seeds
            if (p := result_path(cfg.results_dir,
                                 job := Job(model, s, cfg.epochs.get(model)))).is_file()]


def summarize(cfg: TableConfig, latency: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row per model from the result files present (a model with none is left out)."""
    rows = []
    for model in cfg.models:
        records = model_records(cfg, model)
        if not records:
            continue
        acc_mean, acc_std = _mean_std([100 * r["test_accuracy"] for r in records])
        timing = (latency or {}).get("models", {}).get(model, {})
        paper = PAPER.get(model, (None,) * 4)
        rows.append({
            "model": model, "seeds": len(records),
            "accuracy_mean": round(acc_mean, 2),
            "accuracy_std": None if acc_std is None else round(acc_std, 2),
            "latency_ms": round(timing["median_ms"], 4) if timing else None,
            "flops": records[0]["flops"], "params": records[0]["params"],
            "epochs": round(records[0]["epochs"], 1),
            "val_late_change_pp": _round(np.mean([c for r in records if (
                c := late_change(r["validation_curve"])) is not None] or [np.nan]), 2),
            "train_minutes": round(float(np.mean([r["train_seconds"] for r in records])) / 60,
                                   1),
            # "cpu" or "cuda": which device trained the seeds (numerics differ slightly)
            "trained_on": "+".join(sorted({_device_kind(r) for r in records})),
            "paper_accuracy": paper[0], "paper_ms": paper[1], "paper_flops": paper[2],
            "paper_params": paper[3],
        })
    return rows


def _device_kind(record: dict[str, Any]) -> str:
    return str(record.get("device", "cpu")).partition(" ")[0]


def _round(value: float, digits: int) -> float | None:
    return None if not math.isfinite(value) else round(float(value), digits)


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Rank correlation (scipy's Spearman rho)."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def _fmt_count(n: float | None) -> str:
    if n is None:
        return "–"
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.1f}K"


def markdown(rows: list[dict[str, Any]], checksum: str | None) -> str:
    head = ("| model | seeds | test acc % (mean ± std) | ms (here) | FLOPs | params | epochs | "
            "late Δval pp | trained on | paper acc % | paper ms (Pixel 1) |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        ms = f"{r['latency_ms']:.3f}" if r["latency_ms"] is not None else "–"
        lines.append(
            f"| {r['model']} | {r['seeds']} | {r['accuracy_mean']:.2f} ± {_std(r['accuracy_std'])}"
            f" | {ms} | {_fmt_count(r['flops'])} | {_fmt_count(r['params'])} | {r['epochs']} "
            f"| {r['val_late_change_pp'] if r['val_late_change_pp'] is not None else '–'} "
            f"| {r.get('trained_on', 'cpu')} "
            f"| {r['paper_accuracy'] if r['paper_accuracy'] is not None else '–'} "
            f"| {r['paper_ms'] if r['paper_ms'] is not None else '–'} |")
    text = head + "\n".join(lines) + "\n"
    timed = [r for r in rows if r["latency_ms"] is not None]
    if len(timed) >= 3:
        rho = spearman([r["flops"] for r in timed], [r["latency_ms"] for r in timed])
        text += (f"\nRank correlation of measured latency with FLOPs over {len(timed)} models: "
                 f"Spearman rho = {rho:.2f}.\n")
        pairs = [(a["model"], b["model"]) for a in timed for b in timed
                 if a["flops"] < b["flops"] and a["latency_ms"] > b["latency_ms"]]
        if pairs:
            text += ("Fewer FLOPs yet slower: " + ", ".join(f"{a} vs {b}" for a, b in pairs)
                     + ".\n")
    text += ("\nlate Δval: mean validation accuracy of the last quarter of the run's evaluations "
             "minus the quarter before (near 0: converged).\n")
    text += ("trained on: the device that trained the seeds (same recipe and data; CPU and GPU "
             "arithmetic differ in rounding only); ms is always timed on this machine's CPU.\n")
    if checksum:
        text += f"\nData: prepared manifest checksum `{checksum}`.\n"
    return text


def write_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buf.getvalue()


def _std(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Accuracy against measured latency and against FLOPs, both log scale (the paper's
    Figure 1 style), error bars = std over seeds; a hollow marker is a single seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, key, label in ((axes[0], "latency_ms", "latency on this CPU, ms (one thread, ORT)"),
                           (axes[1], "flops", "FLOPs")):
        for r in rows:
            if r[key] is None:
                continue
            family = r["model"].split("-")[0]
            colour = f"C{FAMILIES.index(family) % 10}" if family in FAMILIES else "k"
            ax.errorbar(r[key], r["accuracy_mean"], yerr=r["accuracy_std"], fmt="o",
                        capsize=3, color=colour,
                        mfc=colour if r["accuracy_std"] is not None else "none")
            ax.annotate(r["model"], (r[key], r["accuracy_mean"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy %")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_curves(cfg: TableConfig, models: Sequence[str], path: Path) -> None:
    """Each model's validation accuracy over its run (mean over its seeds, x in epochs): the
    evidence behind the "late Δval" column that a run had gone flat."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5.5))
    for i, model in enumerate(models):
        records = model_records(cfg, model)
        curves = [np.asarray(r["validation_curve"], dtype=float) for r in records]
        length = min(len(c) for c in curves)
        if length == 0:
            continue
        steps = curves[0][:length, 0]
        per_epoch = records[0]["steps"] / records[0]["epochs"]
        accuracy = np.mean([c[:length, 1] for c in curves], axis=0)
        ax.plot(steps / per_epoch, 100 * accuracy, label=f"{model} ({len(records)})",
                color=f"C{i % 10}", linestyle="-" if i < 10 else "--")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy % (mean over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, title="model (seeds)", title_fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _data_checksum(cfg: TableConfig) -> str:
    """The prepared data's checksum; every result file present must carry it (results of
    other data are refused before anything trains)."""
    from kwspot.datasets.prepare import is_prepared, read_prepared_info

    if not is_prepared(cfg.prepared):
        raise KwspotError(f"{cfg.prepared}: not prepared data; run `kwspot prepare` first")
    checksum = read_prepared_info(cfg.prepared)["checksum"]
    for path in Path(cfg.results_dir).glob("*-seed*.json"):
        if json.loads(path.read_text()).get("data_checksum") != checksum:
            raise KwspotError(f"{path} was measured on other data than {cfg.prepared} "
                              f"(checksum {checksum[:12]}); give this data its own "
                              "--results folder")
    return checksum


def everything_present(cfg: TableConfig) -> TableConfig:
    """``cfg`` widened to every result file in ``results_dir`` (all carry this data's
    checksum): the table shows every model and seed measured so far, so a run for a few
    models adds rows instead of dropping the others'. The paper's order, then any others."""
    found = [json.loads(p.read_text()) for p in Path(cfg.results_dir).glob("*-seed*.json")]
    models = {r["model"] for r in found if "model" in r} | set(cfg.models)
    ordered = [m for m in TABLE_MODELS if m in models] + sorted(models - set(TABLE_MODELS))
    seeds = sorted({int(r["seed"]) for r in found if "seed" in r} | set(cfg.seeds))
    return dataclasses.replace(cfg, models=tuple(ordered), seeds=tuple(seeds))


def build_table(cfg: TableConfig, report: Callable[[JobResult], None] = lambda r: None,
                train: bool = True) -> list[dict[str, Any]]:
    """Run the missing jobs (unless ``train=False``), time the models, write table.md,
    table.csv and table.png into ``results_dir``; returns the rows."""
    jobs = _jobs(cfg)
    checksum = _data_checksum(cfg)
    if train:
        todo = [j for j in jobs if not result_path(cfg.results_dir, j).is_file()]
        failures = run_jobs(cfg, todo, report)
    else:
        failures = []
    present = everything_present(cfg)
    rows = summarize(present)
    if rows:
        latency = measure_latency([r["model"] for r in rows], cfg.results_dir,
                                  cfg.latency_runs, again=cfg.remeasure_latency)
        for r in rows:
            r["latency_ms"] = round(latency["models"][r["model"]]["median_ms"], 4)
    out = Path(cfg.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "table.md", markdown(rows, checksum))
    atomic_write_text(out / "table.csv", write_csv(rows))
    if rows:
        plot(rows, out / "table.png")
        plot_curves(present, [r["model"] for r in rows], out / "curves.png")
    if failures:
        raise KwspotError(f"{len(failures)} job(s) failed (the table holds the others): "
                          + "; ".join(failures))
    return rows


def parse_epochs(items: Sequence[str]) -> dict[str, float]:
    """``["res15=20", "res8=30"]`` -> {"res15": 20.0, "res8": 30.0}."""
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise KwspotError(f"--epochs takes MODEL=EPOCHS, got {item!r}") from None
        if not math.isfinite(out[name.strip()]) or out[name.strip()] <= 0:
            raise KwspotError(f"--epochs for {name} must be positive, got {value}")
    return out
