"""A keyword classifier for any labelled dataset on the frozen speech embedding: the recipe of
the shipped ``shipped-embedding`` model, as a library function (``kwspot train-embedding``).

Why these steps (each measured on validation streams, docs/results.md):

- **Stream-like windows.** Training windows are 1.98 s (the embedding's window). Each holds one
  clip at a random place with, most of the time (``context``), other non-keyword speech
  before and after it, as in a stream where a keyword is rarely alone; then augmentation
  (reverb, microphone colouring, noise from the dataset's noise files or coloured noise at
  0-30 dB SNR, level).
- **Every negative clip** of the training split is used (``train_unknown_fraction=inf``
  unless the data config says otherwise) and ``_unknown_`` weighs ``unknown_weight`` times
  its balanced weight in the loss.
- **Hard negatives.** Rounds of mining: a model's false alarms (smoothed score >=
  ``mine_threshold``) on streams of *training* audio (``kwspot streams --split train``;
  other splits are refused) become ``_unknown_`` windows of the next model. Either name the
  round models (``mine_models``) or let it train them (``mine_rounds``).

The head (``TemporalHead``) trains in seconds on the embeddings; the windows are embedded once
and cached in ``work``, mined windows and stream embeddings too, so a killed run resumes where
it stopped and later runs on the same data reuse the expensive part.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

from kwspot.audio import load_audio
from kwspot.clips import decode_clips
from kwspot.data import SILENCE, UNKNOWN
from kwspot.datasets import open_dataset
from kwspot.errors import KwspotError
from kwspot.fileio import atomic_path, atomic_write_text
from kwspot.wakeword.data import augment
from kwspot.wakeword.export import embedding_path, export_wakeword
from kwspot.wakeword.keywords_config import (
    RATE,
    EmbeddingTrainConfig,
    check_training_stream,
)
from kwspot.wakeword.memo import load_store, memoized_model, save_store, store_for
from kwspot.wakeword.model import WINDOW_SAMPLES, AveragedHeads, WakewordClassifier
from kwspot.wakeword.train import HeadConfig, embed_windows, embedding_graph, train_head

CLIP = RATE
WINDOW_SEED = 0  # the windows do not move with the training seed: seeds compare on one set


def check_dataset(dataset: Any, mining: bool) -> None:
    """What the windows and the head need from the data, checked before the expensive part."""
    if len(dataset.labels) < 2:
        raise KwspotError(f"needs at least 2 classes, got {dataset.labels}")
    if mining and UNKNOWN not in dataset.labels:
        raise KwspotError("mining puts false alarms in the _unknown_ class, which this data "
                          "does not have (give --keywords so other labels become _unknown_)")
    if not dataset.split("validation"):
        raise KwspotError("no validation clips: the best epoch is chosen on them "
                          "(give more speakers or set --validation-pct)")
    present = {u.label for u in dataset.split("train")}
    missing = [label for label in dataset.labels if label not in present]
    if missing:
        raise KwspotError(f"no training clips of {', '.join(missing)}; every class needs "
                          "some (e.g. --silence-fraction > 0)")


def trimmed(clip: np.ndarray, floor: float = 0.02) -> np.ndarray:
    """The clip without its leading and trailing near-silence (a 1 s Speech Commands clip is
    mostly silence around a ~0.5 s word), so context speech can sit close to it."""
    loud = np.flatnonzero(np.abs(clip) > floor * max(float(np.abs(clip).max()), 1e-6))
    if not len(loud):
        return clip
    pad = int(0.05 * RATE)
    return clip[max(0, loud[0] - pad) : loud[-1] + pad]


def window_for(clip: np.ndarray, context: Sequence[np.ndarray], rng: np.random.Generator,
               with_context: bool) -> np.ndarray:
    """``clip`` at a random place in a 1.98 s window; with context, non-keyword speech before
    and after it, 0.1-1.5 s away, each piece at its own level (+-6 dB)."""
    n = WINDOW_SAMPLES
    window = np.zeros(n, np.float64)
    speech = trimmed(clip) if with_context else clip
    speech = speech[:n]
    start = int(rng.integers(0, n - len(speech) + 1))
    level = max(float(np.sqrt(np.mean(speech**2))), 1e-4)
    window[start : start + len(speech)] += speech
    if with_context and context:
        # before: pieces ending before the clip; after: pieces starting after it
        cursor = start - int(rng.uniform(0.1, 1.5) * RATE)
        while cursor > 0:
            piece = trimmed(context[int(rng.integers(len(context)))])
            gain = level / max(float(np.sqrt(np.mean(piece**2))), 1e-4) * \
                10 ** (rng.uniform(-6, 6) / 20)
            lo = cursor - len(piece)
            window[max(0, lo) : cursor] += gain * piece[max(0, -lo) :]
            cursor = lo - int(rng.uniform(0.1, 1.5) * RATE)
        cursor = start + len(speech) + int(rng.uniform(0.1, 1.5) * RATE)
        while cursor < n:
            piece = trimmed(context[int(rng.integers(len(context)))])
            gain = level / max(float(np.sqrt(np.mean(piece**2))), 1e-4) * \
                10 ** (rng.uniform(-6, 6) / 20)
            hi = min(n, cursor + len(piece))
            window[cursor:hi] += gain * piece[: hi - cursor]
            cursor = hi + int(rng.uniform(0.1, 1.5) * RATE)
    peak = float(np.abs(window).max())
    if peak > 0.99:
        window *= 0.99 / peak
    return window.astype(np.float32)


def split_windows(dataset: Any, name: str, noises: Sequence[np.ndarray],
                  copies: dict[str, int], context_p: float,
                  seed: int = WINDOW_SEED) -> tuple[np.ndarray, np.ndarray]:
    """(N, 31,712) augmented windows and their label indices for one split: ``copies`` per
    clip by kind (keyword, unknown, silence); the split's ``_unknown_`` clips are the context
    speech. Silence windows are real noise at a level (half), else augmented near-silence.
    Everything is held in memory (127 KB a window): fine for tens of thousands of windows,
    not for the full Speech Commands with every negative and several copies."""
    rows = dataset.split(name)
    table = decode_clips(rows, CLIP)
    labels = [dataset.labels.index(u.label) for u in table.utterances]
    unknown = dataset.labels.index(UNKNOWN) if UNKNOWN in dataset.labels else -1
    silence = dataset.labels.index(SILENCE) if SILENCE in dataset.labels else -1
    context = [table.audio[i] for i, y in enumerate(labels) if y == unknown]
    rng = np.random.default_rng([seed, len(name)])
    out, ys = [], []
    for i, y in enumerate(labels):
        kind = "silence" if y == silence else "unknown" if y == unknown else "keyword"
        for _ in range(copies[kind]):
            if y == silence:
                window = np.zeros(WINDOW_SAMPLES, np.float32)
                if noises and rng.random() < 0.5:  # real noise at a level, else augment's
                    source = noises[int(rng.integers(len(noises)))]
                    start = int(rng.integers(0, max(1, len(source) - WINDOW_SAMPLES)))
                    piece = np.resize(source[start : start + WINDOW_SAMPLES], WINDOW_SAMPLES)
                    window = piece * rng.uniform(0.01, 1.0)
                    out.append(window.astype(np.float32))
                    ys.append(y)
                    continue
                window[:] = 1e-3 * rng.standard_normal(WINDOW_SAMPLES)
            else:
                window = window_for(table.audio[i], context, rng, rng.random() < context_p)
            out.append(augment(window, rng, noises, snr_db=(0.0, 30.0)))
            ys.append(y)
    if not out:
        return np.zeros((0, WINDOW_SAMPLES), np.float32), np.zeros(0, np.int64)
    return np.stack(out), np.array(ys)


def mine_windows(model_path: str | Path, streams: Sequence[str], threshold: float,
                 store_path: Path, limit: int, seed: int, margin_s: float = 0.0,
                 log: Callable[[str], None] | None = None) -> np.ndarray:
    """Hard negatives: the 1.98 s windows where ``model_path`` scores any keyword >=
    ``threshold`` (smoothed, as the detector does) in streams of **training** audio (others
    are refused): of the hops whose window lies inside the audio and overlaps no true
    keyword widened by ``margin_s`` on each side, every other one (filtered first, so one
    more hop at a stream's edge does not shift the whole stream's selection); at most
    ``limit``, drawn at random with ``seed``."""
    from kwspot.datasets.streams import read_truth
    from kwspot.evaluate.streams import score_stream
    from kwspot.runtime.detector import Detector, DetectorConfig

    store = load_store(store_path)
    model = memoized_model(model_path, store)
    detector = Detector(model, DetectorConfig(threshold=threshold))
    found: list[np.ndarray] = []
    for stream in streams:
        check_training_stream(stream)
        wav, truth = read_truth(stream)
        scored = score_stream(detector, stream)
        spans = [(e["start"] - margin_s, e["end"] + margin_s) for e in truth["events"]]
        with sf.SoundFile(str(wav)) as audio:  # one handle for all of the stream's windows
            usable = []  # hot hops whose window lies inside the audio and away from keywords
            for i in np.flatnonzero(scored.smoothed.max(axis=1) >= threshold):
                end_s = float(scored.ends[i])
                end = round(end_s * RATE)
                if end - WINDOW_SAMPLES < 0 or end > audio.frames or any(
                        a < end_s and b > end_s - WINDOW_SAMPLES / RATE for a, b in spans):
                    continue  # (the flushed tail ends past the audio)
                usable.append(end)
            for end in usable[::2]:  # neighbours overlap by 1.9 s: every other one
                audio.seek(end - WINDOW_SAMPLES)
                found.append(audio.read(WINDOW_SAMPLES, dtype="float32"))
        if log is not None:
            log(f"mined {len(found)} windows so far ({stream})")
        save_store(store, store_path)
    if len(found) > limit:
        keep = np.random.default_rng(seed).choice(len(found), limit, replace=False)
        found = [found[i] for i in sorted(keep)]
    return np.stack(found).astype(np.float32) if found else \
        np.zeros((0, WINDOW_SAMPLES), np.float32)


def _mining_tag(model_path: str | Path, cfg: EmbeddingTrainConfig) -> str:
    """What a round's mined windows depend on: the model's graphs (by content), the streams
    (path, size, time, truth), the mining settings and the seed (which draws the subset
    when there are more than ``mine_limit``)."""
    from kwspot.runtime.model import network_path

    digests = [hashlib.sha256(p.read_bytes()).hexdigest()
               for p in (network_path(model_path), embedding_path(model_path))]
    streams = []
    for stream in cfg.mine_streams:  # rebuilt streams at the same path are other streams
        wav = Path(stream).with_suffix(".wav")
        truth = Path(stream).with_suffix(".json")
        streams.append([wav.resolve().as_posix(), wav.stat().st_size, wav.stat().st_mtime_ns,
                        hashlib.sha256(truth.read_bytes()).hexdigest()])
    key = [digests, streams, cfg.mine_threshold, cfg.mine_limit, cfg.mine_margin_s, cfg.seed]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:12]


def _window_features(cfg: EmbeddingTrainConfig, dataset: Any, work: Path, graph: Path,
                     log: Callable[[str], None]) -> dict[str, np.ndarray]:
    """Embedded training and validation windows (and a few validation windows as audio, the
    export's parity check), made once per data checksum and recipe."""
    recipe = (cfg.keyword_copies, cfg.unknown_copies, cfg.silence_copies, cfg.context)
    cache = work / (f"features-{dataset.checksum[:12]}-"
                    + "-".join(str(v) for v in recipe) + ".npz")
    if not cache.is_file():
        noises = [load_audio(p) for p in dataset.noise_paths]
        started = time.perf_counter()
        parts: dict[str, np.ndarray] = {}
        for name, copies in (("train", {"keyword": cfg.keyword_copies,
                                        "unknown": cfg.unknown_copies,
                                        "silence": cfg.silence_copies}),
                             ("validation", {"keyword": 1, "unknown": 1, "silence": 1})):
            audio, labels = split_windows(dataset, name, noises, copies, cfg.context)
            if not len(labels):
                raise KwspotError(f"{cfg.data.path}: no {name} clips")
            log(f"{name}: {len(labels)} windows made ({time.perf_counter() - started:.0f} s)")
            parts[f"{name}_x"] = embed_windows(audio, graph, cfg.threads)
            parts[f"{name}_y"] = labels
            log(f"{name}: embedded ({time.perf_counter() - started:.0f} s)")
            if name == "validation":
                parts["check"] = audio[:: max(1, len(audio) // 16)][:16]
        # a file object: np.savez would add ".npz" to the temporary name
        with atomic_path(cache) as partial, open(partial, "wb") as f:
            np.savez(f, **parts)
    z = np.load(cache)
    return {k: z[k] for k in z.files}


def _mined_features(model_path: str | Path, cfg: EmbeddingTrainConfig, work: Path,
                    graph: Path, log: Callable[[str], None]) -> np.ndarray:
    cache = work / f"mined-{_mining_tag(model_path, cfg)}.npy"
    if not cache.is_file():
        mined = mine_windows(model_path, cfg.mine_streams, cfg.mine_threshold,
                             store_for(model_path, work), cfg.mine_limit, cfg.seed,
                             cfg.mine_margin_s, log)
        with atomic_path(cache) as partial, open(partial, "wb") as f:
            np.save(f, embed_windows(mined, graph, cfg.threads))
    return np.load(cache)


def _train_and_export(cfg: EmbeddingTrainConfig, dataset: Any, windows: dict[str, np.ndarray],
                      mined: list[np.ndarray], out_path: Path,
                      log: Callable[[str], None], heads: int = 1) -> dict[str, Any]:
    """Train ``heads`` heads (seeds ``cfg.seed`` on) on the windows and the mined ones,
    export them (averaged when several) with a card; round models are one head."""
    unknown = dataset.labels.index(UNKNOWN) if UNKNOWN in dataset.labels else None
    extra = np.concatenate(mined) if mined else np.zeros((0, *windows["train_x"].shape[1:]),
                                                         np.float32)
    train_x = np.concatenate([windows["train_x"], extra])
    train_y = np.concatenate([windows["train_y"], np.full(len(extra), unknown or 0)])
    x = np.concatenate([train_x, windows["validation_x"]])
    y = np.concatenate([train_y, windows["validation_y"]])
    validation = np.arange(len(y)) >= len(train_y)
    weight = tuple(cfg.unknown_weight if label == UNKNOWN else 1.0 for label in dataset.labels)
    seeds = [cfg.seed + i for i in range(heads)]
    trained = [train_head(x, y, validation, HeadConfig(
        epochs=cfg.epochs, seed=seed, classes=len(dataset.labels), class_weight=weight),
        log=log) for seed in seeds]
    head = trained[0][0] if heads == 1 else AveragedHeads([h for h, _ in trained]).eval()
    info = trained[0][1]
    with torch.no_grad():  # accuracy whatever the class count (train_head's metrics differ)
        predicted = head(torch.from_numpy(x[validation])).argmax(1).numpy()
    info["val_accuracy"] = float((predicted == y[validation]).mean())
    if heads > 1:
        info["epoch"] = [i["epoch"] for _, i in trained]
        info["val_loss"] = [i["val_loss"] for _, i in trained]
    model = WakewordClassifier("keywords", head, labels=dataset.labels)
    training = {"data": cfg.data.path, "data_checksum": dataset.checksum,
                "negatives": list(cfg.data.negatives),
                "recipe": {"keyword_copies": cfg.keyword_copies,
                           "unknown_copies": cfg.unknown_copies,
                           "silence_copies": cfg.silence_copies, "context": cfg.context},
                "seed": cfg.seed, "heads": heads, "head_seeds": seeds,
                "unknown_weight": cfg.unknown_weight, "mined_windows": len(extra),
                "best_epoch": info["epoch"],
                "val_loss": info["val_loss"], "val_accuracy": info.get("val_accuracy"),
                "val_accuracy_of": "validation windows made like the training ones (1.98 s, "
                                   "context speech, augmented), not streams",
                "train_windows": info["train_windows"], "command": cfg.command}
    if heads > 1:
        training["logits_are"] = ("the log of the heads' mean posteriors: their softmax is "
                                  "that mean")
    card = export_wakeword(model, out_path, windows["check"], extra={
        "model": "embedding-keywords", "training": training})
    torch.save(head.state_dict(), out_path.with_suffix(".head.pt"))
    return {"model": str(out_path), "heads": heads, "best_epoch": info["epoch"],
            "val_accuracy": info.get("val_accuracy"), "train_windows": info["train_windows"],
            "mined_windows": len(extra), "parity": card["parity"]["max_abs_diff"]}


def train_embedding_classifier(cfg: EmbeddingTrainConfig, out: str | Path,
                               work: str | Path | None = None,
                               log: Callable[[str], None] = lambda _line: None,
                               ) -> dict[str, Any]:
    """Train and export ``<out>/<name>.onnx`` (audio in, embedding inside, posteriors and
    logits out, its card beside it); returns (and writes as ``<name>.summary.json``) what
    was built and measured. ``work`` (default ``<out>/work``) keeps the caches."""
    cfg.check()
    out = Path(out)
    work = Path(work) if work is not None else out / "work"
    threads_before = torch.get_num_threads()
    try:
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        return _build(cfg, out, work, log)
    finally:
        torch.set_num_threads(threads_before)


def _build(cfg: EmbeddingTrainConfig, out: Path, work: Path,
           log: Callable[[str], None]) -> dict[str, Any]:
    started = time.perf_counter()
    dataset = open_dataset(cfg.data)
    check_dataset(dataset, mining=bool(cfg.mine_rounds or cfg.mine_models))
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    graph = embedding_graph(work / "embed-windows.onnx")
    windows = _window_features(cfg, dataset, work, graph, log)
    mined: list[np.ndarray] = []
    rounds: list[dict[str, Any]] = []
    for model_path in cfg.mine_models:
        mined.append(_mined_features(model_path, cfg, work, graph, log))
        rounds.append({"model": str(model_path), "mined_windows": len(mined[-1])})
        log(f"round {len(rounds)}: {len(mined[-1])} windows mined with {model_path}")
    for _ in range(cfg.mine_rounds):
        path = work / "rounds" / f"{cfg.name}-round{len(rounds)}.onnx"
        done = path.with_suffix(".done.json")
        key = _round_key(cfg, dataset.checksum, mined)
        if not done.is_file() or json.loads(done.read_text()) != key:
            done.unlink(missing_ok=True)  # a kill mid-export must not leave it vouching
            log(f"round {len(rounds) + 1}: training the model that mines it")
            _train_and_export(cfg, dataset, windows, mined, path, log)
            atomic_write_text(done, json.dumps(key))
        mined.append(_mined_features(path, cfg, work, graph, log))
        rounds.append({"model": str(path), "mined_windows": len(mined[-1])})
        log(f"round {len(rounds)}: {len(mined[-1])} windows mined")
    result = _train_and_export(cfg, dataset, windows, mined, out / f"{cfg.name}.onnx", log,
                               heads=cfg.heads)
    summary = {**result, "name": cfg.name, "data_checksum": dataset.checksum,
               "labels": dataset.labels, "mining": {
                   "streams": list(cfg.mine_streams), "threshold": cfg.mine_threshold,
                   "limit": cfg.mine_limit, "margin_s": cfg.mine_margin_s, "rounds": rounds},
               "config": _jsonable(cfg), "seconds": round(time.perf_counter() - started, 1)}
    atomic_write_text(out / f"{cfg.name}.summary.json", json.dumps(summary, indent=1) + "\n")
    return summary


def _round_key(cfg: EmbeddingTrainConfig, checksum: str,
               mined: list[np.ndarray]) -> dict[str, Any]:
    """What a round's model depends on (not how many rounds follow it): the data, the
    settings (threads too: the head's weights depend on them) and the windows mined before
    it, so a resumed or lengthened run retrains it only if one of them changed."""
    digest = hashlib.sha256()
    for part in mined:
        digest.update(np.ascontiguousarray(part).tobytes())
    settings = {k: v for k, v in _jsonable(cfg).items()
                if k not in ("mine_rounds", "name", "command", "heads")}
    return {"data_checksum": checksum, "config": settings, "mined": digest.hexdigest()}


def _jsonable(cfg: EmbeddingTrainConfig) -> dict[str, Any]:
    d = dataclasses.asdict(cfg)
    if d["data"].get("train_unknown_fraction") == math.inf:
        d["data"]["train_unknown_fraction"] = "all"
    return json.loads(json.dumps(d, default=str))
