"""The frozen speech embedding on the 12-class Speech Commands task: does a pretrained
representation beat TC-ResNet trained from scratch on ~2.2k keyword clips?

The same prepared data as ``kwspot table`` (same rows, same test split, its checksum in the
output). Each 1 s clip goes into the embedding's 1.98 s window (at a random place for
training, in the middle for validation and test; the rest is the clip's own silence level of
zeros, the same for every split), the frozen embedding makes 16 x 96 features, and the
wake-word head (``TemporalHead`` with 12 outputs) trains on them, best epoch by validation
loss. Training silence rows are drawn from the training noise files, as ``kwspot train`` does.

    python benchmarks/embedding_12class.py --data prepared/sc-lite --seeds 0,1,2 \
        --json docs/results/embedding-12class.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from kwspot.audio import load_audio
from kwspot.clips import decode_clips
from kwspot.datasets import DataConfig, open_dataset
from kwspot.wakeword.model import WINDOW_SAMPLES
from kwspot.wakeword.train import HeadConfig, embed_windows, embedding_graph, train_head

CLIP = 16000


def windows(audio: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    out = np.zeros((len(audio), WINDOW_SAMPLES), np.float32)
    for i, clip in enumerate(audio):
        start = (WINDOW_SAMPLES - CLIP) // 2 if rng is None else \
            int(rng.integers(0, WINDOW_SAMPLES - CLIP + 1))
        out[i, start : start + CLIP] = clip
    return out


def split_audio(dataset, name: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    rows = dataset.split(name)
    table = decode_clips(rows, CLIP)
    audio = table.audio.copy()
    noises = [load_audio(p) for p in dataset.noise_paths]
    for i, u in enumerate(table.utterances):
        if u.path is None and noises:  # a training silence placeholder
            noise = noises[int(rng.integers(len(noises)))]
            start = int(rng.integers(0, len(noise) - CLIP))
            audio[i] = noise[start : start + CLIP] * rng.uniform(0.0, 1.0)
    labels = np.array([dataset.labels.index(u.label) for u in table.utterances])
    return audio, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="prepared/sc-lite")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--work", default="runs/embedding-12class")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    start = time.perf_counter()
    dataset = open_dataset(DataConfig(args.data))
    work = Path(args.work)
    graph = embedding_graph(work / "embed-windows.onnx")
    cache = work / f"features-{dataset.checksum[:12]}.npz"
    rng = np.random.default_rng(0)
    if not cache.is_file():
        parts = {}
        for name in ("train", "validation", "test"):
            audio, labels = split_audio(dataset, name, rng)
            feats = embed_windows(windows(audio, rng if name == "train" else None), graph)
            parts[name] = (feats, labels)
            print(f"{name}: {len(labels)} clips embedded, {time.perf_counter() - start:.0f} s",
                  file=sys.stderr, flush=True)
        np.savez(cache, **{f"{n}_{k}": v for n, (f, y) in parts.items()
                           for k, v in (("x", f), ("y", y))})
    z = np.load(cache)
    x = np.concatenate([z["train_x"], z["validation_x"]])
    y = np.concatenate([z["train_y"], z["validation_y"]])
    validation = np.arange(len(y)) >= len(z["train_y"])
    results = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        head, info = train_head(x, y, validation, HeadConfig(
            epochs=args.epochs, seed=seed, classes=len(dataset.labels)))
        with torch.no_grad():
            predicted = head(torch.from_numpy(z["test_x"])).argmax(1).numpy()
        accuracy = float((predicted == z["test_y"]).mean())
        results.append({"seed": seed, "test_accuracy": accuracy, "best_epoch": info["epoch"]})
        print(f"seed {seed}: test accuracy {100 * accuracy:.2f} %", flush=True)
    accs = np.array([r["test_accuracy"] for r in results]) * 100
    out = {"data": args.data, "data_checksum": dataset.checksum, "labels": dataset.labels,
           "test_clips": len(z["test_y"]), "runs": results,
           "mean": round(float(accs.mean()), 2),
           "std": round(float(accs.std(ddof=1)), 2) if len(accs) > 1 else None,
           "command": " ".join(["python", *sys.argv])}
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
