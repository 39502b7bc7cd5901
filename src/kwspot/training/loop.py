"""The training loop, top to bottom: data -> augment -> features -> model -> SGD, with
validation every ``eval_every`` steps, the best checkpoint kept, and exact resume.

Run directory: config.json, manifest.jsonl + prepared.json (every clip and label of every
split, as ``kwspot prepare`` writes them, so the run directory is itself prepared data), last.pt
(resume state), best.pt (best validation), metrics.jsonl, tb/ (TensorBoard), summary.json.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn

from kwspot.checkpoint import load_record, model_record, save_record
from kwspot.classifier import KeywordClassifier
from kwspot.clips import LabelledAudio, load_labelled
from kwspot.data import SILENCE, Dataset
from kwspot.datasets import open_dataset
from kwspot.datasets.prepare import write_prepared
from kwspot.errors import KwspotError, TrainingInterrupted
from kwspot.evaluate import classification_report, predict_proba, run_evaluation
from kwspot.fileio import atomic_write_text
from kwspot.models.tc_resnet import TCResNet
from kwspot.training.augment import (
    NoiseBank,
    augment_batch,
    fill_silence,
    history_frames,
    noise_bank,
    sample_history,
    spec_augment,
)
from kwspot.training.config import TrainConfig

console = Console(stderr=True)


def load_split(dataset: Dataset, split: str, cfg: TrainConfig, quiet: bool) -> LabelledAudio:
    rows = dataset.split(split)
    with _progress(quiet) as bar:
        task = bar.add_task(f"decode {split}", total=len(rows), info="")
        data = load_labelled(rows, dataset.labels, cfg.features.clip_samples,
                             cfg.features.sample_rate, progress=lambda n: bar.advance(task, n))
    report_bad_files(data.bad_files)
    return data


def report_bad_files(problems: list[str], limit: int = 20) -> None:
    for problem in problems[:limit]:
        console.print(f"[yellow]skipped[/] {problem}")
    if len(problems) > limit:
        console.print(f"[yellow]... and {len(problems) - limit} more bad files[/]")


def _progress(quiet: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
        console=console, disable=quiet,
    )


def training_device(name: str) -> torch.device:
    """The torch device for ``--device``, refused with a clear message when it is absent."""
    if name.startswith("cuda"):
        index = int(name.partition(":")[2] or 0)
        if not torch.cuda.is_available():
            raise KwspotError(f"--device {name}: torch sees no CUDA device (torch "
                              f"{torch.__version__}); use --device cpu (it also moves a "
                              "resumed run)")
        if index >= torch.cuda.device_count():
            raise KwspotError(f"--device {name}: torch sees {torch.cuda.device_count()} CUDA "
                              "device(s)")
    return torch.device(name)


def init_from(model: KeywordClassifier, path: str) -> None:
    """Fine-tuning: take a checkpoint's weights; it must be the same model and labels."""
    record = load_record(path)
    if record.get("model_name") != model.model_name or record.get("labels") != model.labels:
        raise KwspotError(f"{path}: --init needs a {model.model_name} with labels {model.labels}"
                          f", not {record.get('model_name')} with {record.get('labels')}")
    model.load_state_dict(record["state_dict"])


def optimizer_for(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD with momentum or Adam (L2 added to the gradient, as the reference recipes' loss
    term does); weight decay on conv/linear weights only, never on BN scales/shifts or
    biases."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": cfg.optim.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if cfg.optim.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.optim.lr_at(0))
    return torch.optim.SGD(groups, lr=cfg.optim.lr_at(0), momentum=cfg.optim.momentum)


def history_samples(model: KeywordClassifier, cfg: TrainConfig) -> int:
    """Samples of history put before each clip (``--history-ms``), 0 when off; refused for a
    model that is not causal, since only a causal model has a window a stream scores alone."""
    if cfg.augment.history_ms <= 0:
        return 0
    network = model.network
    if not isinstance(network, TCResNet) or network.cfg.time_padding != "causal":
        raise KwspotError(f"--history-ms needs a causal model (e.g. tc-resnet8-causal); "
                          f"{cfg.model} looks ahead, so a stream scores whole windows alone")
    wanted = math.ceil(cfg.augment.history_ms / cfg.features.hop_ms - 1e-9)
    frames = history_frames(wanted, cfg.features.num_frames, network.total_stride)
    return frames * cfg.features.hop_length


def validate(model: KeywordClassifier, data: LabelledAudio,
             history: np.ndarray | None = None) -> tuple[float, float]:
    """Accuracy and loss on clips; with ``history`` (N, H) before them, each clip's window
    is scored as a stream scores it."""
    if history is None:
        proba = predict_proba(model, data.audio)
    else:
        proba = predict_proba(model, np.concatenate([history, data.audio], axis=1),
                              window_frames=model.features.num_frames)
    loss = float(-np.log(proba[np.arange(len(data)), data.targets] + 1e-9).mean())
    report = classification_report(data.targets, proba.argmax(1), model.labels)
    return report.accuracy, loss


def training_step(model: KeywordClassifier, optimizer: torch.optim.Optimizer,
                  audio: torch.Tensor, is_silence: torch.Tensor, targets: torch.Tensor,
                  noise: NoiseBank, cfg: TrainConfig,
                  generator: torch.Generator,
                  history: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGD/Adam step on a batch of raw clips: augment (shift, history, noise), features,
    SpecAugment, network, cross-entropy, update. Returns the loss and the logits."""
    batch = augment_batch(audio, is_silence, noise, cfg.augment, cfg.features.sample_rate,
                          generator, history)  # on the CPU, from the checkpointed generator
    device = next(model.parameters()).device
    features = spec_augment(model.frontend(batch.to(device)), cfg.spec_augment, generator)
    if history is None:
        logits = model.network(features)
    else:
        logits = model.network.window_logits(features, cfg.features.num_frames)
    loss = nn.functional.cross_entropy(logits, targets.to(device))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss, logits


class BatchSampler:
    """Shuffled epochs drawn from one torch.Generator whose state is checkpointed."""

    def __init__(self, size: int, batch_size: int, generator: torch.Generator) -> None:
        self.size, self.batch_size, self.generator = size, batch_size, generator
        self.order = torch.randperm(size, generator=generator)
        self.cursor = 0

    def next(self) -> torch.Tensor:
        picks = []
        need = self.batch_size
        while need:
            if self.cursor >= self.size:
                self.order = torch.randperm(self.size, generator=self.generator)
                self.cursor = 0
            take = self.order[self.cursor : self.cursor + need]
            self.cursor += len(take)
            need -= len(take)
            picks.append(take)
        return torch.cat(picks)

    def state(self) -> dict[str, Any]:
        return {"order": self.order, "cursor": self.cursor, "rng": self.generator.get_state()}

    def load(self, state: dict[str, Any]) -> None:
        self.order, self.cursor = state["order"], state["cursor"]
        self.generator.set_state(state["rng"])


def _metrics_row(line: str) -> dict | None:
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return None
    return row if isinstance(row, dict) else None


class _Interrupted(Exception):
    """Raised at a step boundary after SIGINT/SIGTERM."""


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks (Linux), so a reused PID is told apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _lock_owner_alive(text: str) -> int | None:
    """The PID holding a lock written as "PID START", if that very process still runs."""
    parts = text.split()
    if not parts or not parts[0].isdigit() or int(parts[0]) <= 0:
        return None  # empty or garbled: nobody can hold it
    pid = int(parts[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid  # alive, another user's
    if len(parts) > 1 and Path("/proc").is_dir() and _start_time(pid) != parts[1]:
        return None  # the PID was reused by another process
    return pid


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """One training process per run directory: two would overwrite each other's checkpoints.

    The lock file holds the owner's PID and start time; a lock whose process is gone (a killed
    run), whose PID was reused, or that is empty, is taken over.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / "train.lock"
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            try:
                owner = _lock_owner_alive(lock.read_text())
            except FileNotFoundError:
                continue
            if owner is None:
                lock.unlink(missing_ok=True)  # stale
                continue
            raise KwspotError(f"{run_dir} is in use by training process {owner}; if no "
                              f"training runs there, delete {lock}") from None
    try:
        os.write(fd, f"{os.getpid()} {_start_time(os.getpid()) or ''}".strip().encode())
        os.close(fd)
        yield
    finally:
        lock.unlink(missing_ok=True)


def train(cfg: TrainConfig | None, run_dir: str | Path, resume: bool = False,
          quiet: bool = False, device: str | None = None) -> dict:
    """Train (or resume) into ``run_dir``; returns the summary also written to summary.json.

    With ``resume=True`` the run's own config.json is used and ``cfg`` may be None;
    ``device`` then moves the run (checkpoints hold CPU tensors, so a GPU run resumes on a
    CPU and back).
    """
    run_dir = Path(run_dir)
    if resume and not (run_dir / "last.pt").is_file():
        raise KwspotError(f"{run_dir}: nothing to resume (no last.pt)")
    with run_lock(run_dir):
        return _train(cfg, run_dir, resume, quiet, device)


def _train(cfg: TrainConfig | None, run_dir: Path, resume: bool, quiet: bool,
           device_name: str | None = None) -> dict:
    last_path = run_dir / "last.pt"
    if resume:
        cfg = TrainConfig.load(run_dir / "config.json")
        if device_name is not None:
            cfg = dataclasses.replace(cfg, device=device_name)
    elif cfg is None:
        raise KwspotError("train needs a config unless it resumes a run")
    elif last_path.exists():
        raise KwspotError(
            f"{run_dir} already holds a run; pass --resume or choose another --run-dir")
    device = training_device(cfg.device)  # before anything is written or decoded
    if device.type == "cuda":  # the same seed repeats a run there too
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(run_dir / "config.json")

    torch.set_num_threads(cfg.threads or os.cpu_count() or 1)
    torch.manual_seed(cfg.seed)
    dataset = open_dataset(cfg.data)
    # the exact clips used, readable as prepared data (`--data RUN_DIR`)
    write_prepared(dataset, run_dir, dataclasses.asdict(cfg.data))
    for split, counts in dataset.summary().items():
        console.print(f"{split}: {sum(counts.values())} clips " + ", ".join(
            f"{k}={v}" for k, v in counts.items()))
    train_set = load_split(dataset, "train", cfg, quiet)
    val_set = load_split(dataset, "validation", cfg, quiet)
    if len(train_set) == 0 or len(val_set) == 0:
        speakers = {u.speaker for u in dataset.utterances if u.path and u.label != SILENCE}
        raise KwspotError(
            f"need both training and validation clips; got {len(train_set)} and "
            f"{len(val_set)} from {len(speakers)} speaker(s). Splits hold out whole speakers: "
            "give more speakers, a CSV with a split column, or other --validation-pct")
    # evaluation silence is the recipe's (noise as recorded) whatever the training options, so
    # validation and test numbers of different runs are measured on the same clips
    silence_seed = cfg.data.seed if dataset.silence_seed is None else dataset.silence_seed
    eval_noise = noise_bank(dataset.noise_paths, silence_seed)
    noise = eval_noise if cfg.augment.noise_rms is None else noise_bank(
        dataset.noise_paths, cfg.seed, cfg.augment.noise_rms)
    val_set.audio = fill_silence(
        val_set.audio, val_set.is_silence, eval_noise, 1.0, silence_seed + 1
    )

    model = KeywordClassifier(cfg.model, dataset.labels, cfg.features, cfg.dropout)
    history = history_samples(model, cfg)
    val_history = None
    if history:  # fixed for the run, so validation accuracies compare across steps
        val_history = sample_history(
            torch.from_numpy(val_set.audio), len(val_set), history,
            cfg.augment.history_speech_prob, torch.Generator().manual_seed(silence_seed + 2),
        ).numpy()
    model.to(device)
    if getattr(model.network, "train_channels_last", False):
        model.network.to(memory_format=torch.channels_last)
    if cfg.init and not resume:
        init_from(model, cfg.init)
    optimizer = optimizer_for(model, cfg)
    generator = torch.Generator().manual_seed(cfg.seed)
    sampler = BatchSampler(len(train_set), cfg.optim.batch_size, generator)
    step, best_acc, best_step, elapsed = 0, -1.0, 0, 0.0
    if resume:
        state = load_record(last_path)
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        sampler.load(state["sampler"])
        torch.set_rng_state(state["torch_rng"])
        if device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], device)  # dropout draws there
        step, best_acc, best_step = state["step"], state["best_acc"], state["best_step"]
        elapsed = state.get("elapsed", 0.0)
        console.print(f"resumed {run_dir} at step {step}")

    audio_all = torch.from_numpy(train_set.audio)
    targets_all = torch.from_numpy(train_set.targets)
    silence_all = torch.from_numpy(train_set.is_silence)

    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run_dir / "tb"), purge_step=step if resume else None)
    metrics_path = run_dir / "metrics.jsonl"
    if resume and metrics_path.exists():
        # a hard kill may have logged past the checkpoint, or cut the last line short
        kept = [line for line in metrics_path.read_text().splitlines()
                if (row := _metrics_row(line)) is not None and row.get("step", 0) <= step]
        atomic_write_text(metrics_path, "".join(line + "\n" for line in kept))
    # a fresh run starts a fresh log (a run killed before its first checkpoint left rows)
    metrics_file = metrics_path.open("a" if resume else "w")

    def save_last() -> None:
        record = model_record(
            model, optimizer=optimizer.state_dict(), sampler=sampler.state(),
            torch_rng=torch.get_rng_state(),
            cuda_rng=torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            step=step, best_acc=best_acc,
            best_step=best_step, elapsed=elapsed + time.perf_counter() - started,
            config=cfg.to_dict(),
        )
        save_record(record, last_path)

    # Ctrl-C / SIGTERM only set a flag; the loop stops at the next step boundary, so the saved
    # state is always that of a whole number of steps and --resume continues exactly.
    interrupted = False

    def on_signal(_signum: int, _frame: Any) -> None:
        nonlocal interrupted
        interrupted = True

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)} \
        if in_main_thread else {}
    started = time.perf_counter()
    model.train()
    running_loss, running_correct, running_n = 0.0, 0, 0
    try:
        with _progress(quiet) as bar:
            task = bar.add_task("train", total=cfg.optim.steps, completed=step, info="")
            while step < cfg.optim.steps:
                lr = cfg.optim.lr_at(step)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                idx = sampler.next()
                past = sample_history(audio_all, len(idx), history,
                                      cfg.augment.history_speech_prob, generator) \
                    if history else None
                loss, logits = training_step(model, optimizer, audio_all[idx], silence_all[idx],
                                             targets_all[idx], noise, cfg, generator, past)
                step += 1
                running_loss += loss.item() * len(idx)
                running_correct += int((logits.argmax(1).cpu() == targets_all[idx]).sum())
                running_n += len(idx)
                bar.advance(task)
                if step % cfg.eval_every == 0 or step == cfg.optim.steps:
                    val_acc, val_loss = validate(model, val_set, val_history)
                    train_loss = running_loss / running_n
                    train_acc = running_correct / running_n
                    running_loss, running_correct, running_n = 0.0, 0, 0
                    for name, value in (("train/loss", train_loss), ("train/accuracy", train_acc),
                                        ("val/loss", val_loss), ("val/accuracy", val_acc),
                                        ("lr", lr)):
                        writer.add_scalar(name, value, step)
                    row = {"step": step, "lr": lr, "train_loss": train_loss,
                           "train_accuracy": train_acc, "val_loss": val_loss,
                           "val_accuracy": val_acc,
                           "elapsed_s": elapsed + time.perf_counter() - started}
                    metrics_file.write(json.dumps(row) + "\n")
                    metrics_file.flush()
                    if val_acc > best_acc:
                        best_acc, best_step = val_acc, step
                        save_record(model_record(model, step=step, val_accuracy=val_acc,
                                                 config=cfg.to_dict()), run_dir / "best.pt")
                    bar.update(task, info=f"val {val_acc:.3f} (best {best_acc:.3f}@{best_step})")
                    save_last()
                if interrupted:
                    raise _Interrupted
    except _Interrupted:
        save_last()
        raise TrainingInterrupted(
            f"interrupted at step {step}; state saved. Continue with: "
            f"kwspot train --resume --run-dir {run_dir}"
        ) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        writer.close()
        metrics_file.close()

    total_time = elapsed + time.perf_counter() - started
    summary = {"model": cfg.model, "steps": step, "train_seconds": round(total_time, 1),
               "best_step": best_step, "val_accuracy": best_acc, "labels": dataset.labels,
               "data_checksum": dataset.checksum, "run_dir": str(run_dir)}
    if history:  # the two accuracies are of different modes; say which
        summary["val_accuracy_mode"] = (f"each clip after a fixed history ({history} samples "
                                        "of other validation clips), as a stream scores it")
        summary["test_accuracy_mode"] = "clips alone, zero history (as `kwspot eval`)"
    if dataset.split("test"):  # the same computation as `kwspot eval <run_dir> --split test`
        report, _bad, _mapping = run_evaluation(run_dir / "best.pt", cfg.data, "test", None)
        summary["test_accuracy"] = report.accuracy
        summary["test_clips"] = report.total
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


