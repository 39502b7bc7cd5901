"""The frozen speech embedding as a 12-class keyword spotter on streams: does the pretrained
representation that wins on clips (``embedding_12class.py``: 92.7 % against ~87 %) also cut
false rejects at a fixed false-alarm budget, where the product lives?

Training windows are 1.98 s (the embedding model's window), built from the **training split
only** (the same material as the shipped model: every training ``_unknown_`` clip plus the
``kwspot negatives`` folder). Each window holds one clip at a random place with, most of the
time, other non-keyword speech before and after it (as in a stream, where a keyword is
rarely alone), then the wake-word augmentation (reverb, microphone colouring, noise from the
training noise files or coloured noise, level). The label is the clip's. Validation windows
come from the validation split the same way (fixed seed) and pick the best epoch. The head
(``TemporalHead``, 12 outputs) trains on the frozen embeddings; the model is exported like a
wake word (audio in, front end and embedding inside, a streaming embedding graph) and can be
scored with ``kwspot eval-stream``.

    python benchmarks/embedding_streams.py --out runs/emb12 --seed 0 \
        --streams runs/streams/validation/keywords.wav runs/streams/validation/negatives.wav
    kwspot eval-stream runs/emb12/emb12.onnx runs/streams/validation/keywords.wav \
        runs/streams/validation/negatives.wav --out runs/emb12/validation-streams

``--streams`` scores the export the way ``kwspot eval-stream`` does, with each embedding of
the streams computed once and remembered for the next head (the figures are the same; the
last command checks it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from kwspot.audio import load_audio
from kwspot.clips import decode_clips
from kwspot.data import SILENCE, UNKNOWN
from kwspot.datasets import DataConfig, open_dataset
from kwspot.wakeword.data import augment
from kwspot.wakeword.export import export_wakeword
from kwspot.wakeword.model import WINDOW_SAMPLES, WakewordClassifier
from kwspot.wakeword.train import HeadConfig, embed_windows, embedding_graph, train_head

RATE = 16000
CLIP = RATE


def trimmed(clip: np.ndarray, floor: float = 0.02) -> np.ndarray:
    """The clip without its leading and trailing near-silence (a 1 s Speech Commands clip is
    mostly silence around a ~0.5 s word), so context speech can sit close to it."""
    loud = np.flatnonzero(np.abs(clip) > floor * max(float(np.abs(clip).max()), 1e-6))
    if not len(loud):
        return clip
    pad = int(0.05 * RATE)
    return clip[max(0, loud[0] - pad) : loud[-1] + pad]


def window_for(clip: np.ndarray, context: list[np.ndarray], rng: np.random.Generator,
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


def split_windows(dataset, name: str, noises: list[np.ndarray], copies: dict[str, int],
                  context_p: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rows = dataset.split(name)
    table = decode_clips(rows, CLIP)
    labels = [dataset.labels.index(u.label) for u in table.utterances]
    unknown, silence = dataset.labels.index(UNKNOWN), dataset.labels.index(SILENCE)
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
                    start = int(rng.integers(0, len(source) - WINDOW_SAMPLES))
                    window = source[start : start + WINDOW_SAMPLES] * rng.uniform(0.01, 1.0)
                    out.append(window.astype(np.float32))
                    ys.append(y)
                    continue
                window[:] = 1e-3 * rng.standard_normal(WINDOW_SAMPLES)
            else:
                window = window_for(table.audio[i], context, rng, rng.random() < context_p)
            out.append(augment(window, rng, noises, snr_db=(0.0, 30.0)))
            ys.append(y)
    return np.stack(out), np.array(ys)


class CachedEmbeddings:
    """The export's embedding session with a memo of every 12,512-sample patch it has embedded
    (keyed by a hash of the samples): heads trained on the same frozen embedding then score a
    stream in seconds, not minutes. The embedding is per patch (its mel clamp too), so a
    remembered result is exactly what the session would return."""

    def __init__(self, session, store: dict[bytes, np.ndarray]) -> None:
        self.session = session
        self.store = store
        self.name = session.get_inputs()[0].name

    def get_inputs(self):
        return self.session.get_inputs()

    def run(self, outputs, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        x = feeds[self.name]
        keys = [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in x]
        missing = [i for i, k in enumerate(keys) if k not in self.store]
        if missing:
            fresh = self.session.run(None, {self.name: x[missing]})[0]
            for i, row in zip(missing, fresh, strict=True):
                self.store[keys[i]] = row
        return [np.stack([self.store[k] for k in keys])]


def store_for(model_path: Path, out: Path) -> Path:
    """The memo of stream embeddings for an export: one per embedding graph (its hash in the
    name), so a changed embedding never reads another's."""
    from kwspot.wakeword.export import embedding_path

    digest = hashlib.sha256(embedding_path(model_path).read_bytes()).hexdigest()[:12]
    return out / f"stream-embeddings-{digest}.npz"


def load_store(path: Path) -> dict[bytes, np.ndarray]:
    if not path.is_file():
        return {}
    z = np.load(path)
    return {bytes(k): v for k, v in zip(z["keys"], z["values"], strict=True)}


def save_store(store: dict[bytes, np.ndarray], path: Path) -> None:
    keys = np.array([np.frombuffer(k, np.uint8) for k in store])
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, keys=keys, values=np.stack(list(store.values())))
    tmp.replace(path)


def stream_figures(model_path: Path, streams: list[str], store_path: Path) -> dict:
    """``kwspot eval-stream``'s figures for one export, the embeddings memoized."""
    from kwspot.evaluate.streams import evaluate_streams, operating_points
    from kwspot.runtime.model import load_keyword_model

    model = load_keyword_model(model_path)
    store = load_store(store_path)
    before = len(store)
    model.embedding_session = CachedEmbeddings(model.embedding_session, store)
    report = evaluate_streams(model, streams)
    if len(store) > before:
        save_store(store, store_path)
    overall = operating_points(report["sweep"], report["keywords"], TARGETS)["overall"]
    points = {key: None if best is None else {
        "frr": round(best["frr"], 4), "fa_per_hour": round(best["fa_per_hour"], 2),
        "threshold": best["threshold"]} for key, best in overall.items()}
    default = report["default_thresholds"]
    return {"model": str(model_path), "hours": report["hours"], "frr_at_fa_per_hour": points,
            "at_0.8": {"frr": default["frr"], "fa_per_hour": default["fa_per_hour"],
                       "false_alarms_by_source": default["false_alarms_by_source"]}}


TARGETS = (0.5, 1, 2, 5, 10, 20)


def mine_windows(model_path: Path, streams: list[str], threshold: float, store_path: Path,
                 limit: int, seed: int, margin_s: float = 0.0) -> np.ndarray:
    """Hard negatives: the 1.98 s windows where ``model_path`` scores any keyword >=
    ``threshold`` (smoothed, as the detector does) in streams of **training** audio (others
    are refused), every other such hop, none overlapping a true keyword widened by
    ``margin_s`` on each side (the shipped model's mining used 0; ``kwspot mine`` uses 0.2:
    a keyword's quiet onset can lie outside its labelled span); at most ``limit``, drawn at
    random."""
    from kwspot.datasets.streams import read_truth
    from kwspot.evaluate.streams import score_stream
    from kwspot.runtime.detector import Detector, DetectorConfig
    from kwspot.runtime.model import load_keyword_model

    model = load_keyword_model(model_path)
    store = load_store(store_path)
    model.embedding_session = CachedEmbeddings(model.embedding_session, store)
    detector = Detector(model, DetectorConfig(threshold=threshold))
    found: list[np.ndarray] = []
    for stream in streams:
        wav, truth = read_truth(stream)
        if truth.get("split") != "train":
            raise SystemExit(f"{stream}: mining needs streams of the training split "
                             "(`kwspot streams --split train`)")
        scored = score_stream(detector, stream)
        info = sf.info(str(wav))
        if info.samplerate != RATE:  # windows are read straight from the file, not resampled
            raise SystemExit(f"{wav}: {info.samplerate} Hz; mining reads 16 kHz streams")
        length = info.frames
        spans = [(e["start"] - margin_s, e["end"] + margin_s) for e in truth["events"]]
        hot = np.flatnonzero(scored.smoothed.max(axis=1) >= threshold)[::2]
        for i in hot:
            end_s = float(scored.ends[i])
            start_s = end_s - WINDOW_SAMPLES / RATE
            end = round(end_s * RATE)
            if end - WINDOW_SAMPLES < 0 or end > length or \
                    any(a < end_s and b > start_s for a, b in spans):
                continue  # (the flushed tail ends past the audio)
            found.append(sf.read(str(wav), start=end - WINDOW_SAMPLES, stop=end,
                                 dtype="float32")[0])
        print(f"mined {len(found)} windows so far ({stream})", file=sys.stderr, flush=True)
        save_store(store, store_path)
    if len(found) > limit:
        keep = np.random.default_rng(seed).choice(len(found), limit, replace=False)
        found = [found[i] for i in sorted(keep)]
    return np.stack(found).astype(np.float32) if found else \
        np.zeros((0, WINDOW_SAMPLES), np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data/speech_commands_lite")
    parser.add_argument("--negatives", default="data/negatives-train")
    parser.add_argument("--out", default="runs/emb12")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--keyword-copies", type=int, default=4)
    parser.add_argument("--unknown-copies", type=int, default=1)
    parser.add_argument("--silence-copies", type=int, default=3)
    parser.add_argument("--context", type=float, default=0.7,
                        help="share of windows with speech around the clip")
    parser.add_argument("--name", default="emb12", help="the export's name in --out")
    parser.add_argument("--unknown-weight", type=float, default=1.0,
                        help="times the balanced loss weight of _unknown_")
    parser.add_argument("--mine-model", nargs="*", default=[],
                        help="exports whose false alarms on --mine-streams become "
                             "_unknown_ training windows (several: rounds of mining)")
    parser.add_argument("--mine-streams", nargs="*", default=[],
                        help="streams of training audio (kwspot streams --split train)")
    parser.add_argument("--mine-threshold", type=float, default=0.5)
    parser.add_argument("--mine-limit", type=int, default=8000)
    parser.add_argument("--mine-margin-s", type=float, default=0.0,
                        help="keep mined windows this far from true keywords too")
    parser.add_argument("--streams", nargs="*", default=[],
                        help="validation streams to score the export on (kwspot eval-stream)")
    args = parser.parse_args()
    start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dataset = open_dataset(DataConfig(args.data, train_unknown_fraction=math.inf,
                                      negatives=(args.negatives,)))
    noises = [load_audio(p) for p in dataset.noise_paths]
    graph = embedding_graph(out / "embed-windows.onnx")
    recipe = {k: getattr(args, k) for k in ("keyword_copies", "unknown_copies",
                                            "silence_copies", "context")}
    key = f"{dataset.checksum[:12]}-" + "-".join(str(v) for v in recipe.values())
    cache = out / f"features-{key}.npz"
    if not cache.is_file():
        parts = {}
        for name, copies in (("train", {"keyword": args.keyword_copies,
                                        "unknown": args.unknown_copies,
                                        "silence": args.silence_copies}),
                             ("validation", {"keyword": 1, "unknown": 1, "silence": 1})):
            audio, labels = split_windows(dataset, name, noises, copies, args.context, 0)
            print(f"{name}: {len(labels)} windows made, {time.perf_counter() - start:.0f} s",
                  file=sys.stderr, flush=True)
            parts[name] = (embed_windows(audio, graph), labels)
            print(f"{name}: embedded, {time.perf_counter() - start:.0f} s", file=sys.stderr,
                  flush=True)
            if name == "validation":
                check = audio[:: max(1, len(audio) // 16)][:16]
        np.savez(cache, check=check, **{f"{n}_{k}": v for n, (f, y) in parts.items()
                                        for k, v in (("x", f), ("y", y))})
    z = np.load(cache)
    train_x, train_y = z["train_x"], z["train_y"]
    mined_count = 0
    if args.mine_model:
        parts = []
        for mine_model in args.mine_model:  # rounds: each model's false alarms are added
            tag = hashlib.sha256(json.dumps([Path(mine_model).resolve().as_posix(),
                                             Path(mine_model).stat().st_mtime,
                                             args.mine_streams, args.mine_threshold,
                                             args.mine_limit,
                                             *([args.mine_margin_s] if args.mine_margin_s
                                               else [])]).encode()).hexdigest()[:12]
            mined_cache = out / f"mined-{tag}.npy"
            if not mined_cache.is_file():
                mined = mine_windows(Path(mine_model), args.mine_streams,
                                     args.mine_threshold, store_for(Path(mine_model), out),
                                     args.mine_limit, args.seed, args.mine_margin_s)
                np.save(mined_cache, embed_windows(mined, graph))
            parts.append(np.load(mined_cache))
        mined_x = np.concatenate(parts)
        mined_count = len(mined_x)
        train_x = np.concatenate([train_x, mined_x])
        train_y = np.concatenate([train_y, np.full(mined_count,
                                                   dataset.labels.index(UNKNOWN))])
        print(f"{mined_count} mined windows", file=sys.stderr, flush=True)
    x = np.concatenate([train_x, z["validation_x"]])
    y = np.concatenate([train_y, z["validation_y"]])
    validation = np.arange(len(y)) >= len(train_y)
    weight = tuple(args.unknown_weight if label == UNKNOWN else 1.0
                   for label in dataset.labels)
    head, info = train_head(x, y, validation, HeadConfig(
        epochs=args.epochs, seed=args.seed, classes=len(dataset.labels), class_weight=weight),
        log=lambda m: print(m, file=sys.stderr, flush=True))
    model = WakewordClassifier("keywords", head, labels=dataset.labels)
    exported = out / f"{args.name}.onnx"
    card = export_wakeword(model, exported, z["check"], extra={
        "model": "embedding-12class",
        "training": {"data": args.data, "data_checksum": dataset.checksum,
                     "negatives": args.negatives, "recipe": recipe, "seed": args.seed,
                     "unknown_weight": args.unknown_weight,
                     "best_epoch": info["epoch"], "val_loss": info["val_loss"],
                     "val_accuracy": info.get("val_accuracy"),
                     "train_windows": info["train_windows"],
                     "command": " ".join(["python", *sys.argv])}})
    torch.save(head.state_dict(), out / f"{args.name}.head.pt")
    result = {"name": args.name, "best_epoch": info["epoch"],
              "val_accuracy": info.get("val_accuracy"), "train_windows": info["train_windows"],
              "recipe": recipe, "unknown_weight": args.unknown_weight, "seed": args.seed,
              "mined": {"model": args.mine_model, "streams": args.mine_streams,
                        "threshold": args.mine_threshold, "windows": mined_count},
              "parity": card["parity"]["max_abs_diff"]}
    if args.streams:
        result["validation_streams"] = stream_figures(exported, args.streams,
                                                      store_for(exported, out))
    result["seconds"] = round(time.perf_counter() - start)
    (out / f"{args.name}.result.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
