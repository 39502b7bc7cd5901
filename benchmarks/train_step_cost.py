"""What one training step of each model costs on this machine, to plan `kwspot table`: one
thread, the model's own recipe (features, batch size, optimizer, SpecAugment) through the
training loop's own step (`kwspot.training.loop.training_step`: augmentation, front end,
network, update), median of a few steps after warm-up; printed as ms a step, seconds an epoch of N
examples and minutes for the recipe's epochs.

    python benchmarks/train_step_cost.py [--models a,b] [--examples 2657] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from kwspot.classifier import KeywordClassifier
from kwspot.datasets import DataConfig
from kwspot.models import MODELS
from kwspot.training.augment import NoiseBank
from kwspot.training.loop import optimizer_for, training_step
from kwspot.training.recipes import recipe_config

LABELS = [str(i) for i in range(12)]


def step_ms(name: str, examples: int, steps: int = 5, warmup: int = 2) -> float:
    cfg = recipe_config(name, DataConfig(path="(none)"), examples)
    model = KeywordClassifier(name, LABELS, cfg.features, cfg.dropout)
    optimizer = optimizer_for(model, cfg)
    generator = torch.Generator().manual_seed(0)
    batch = cfg.optim.batch_size
    audio = torch.randn(batch, cfg.features.clip_samples, generator=generator) * 0.1
    silence = torch.zeros(batch, dtype=torch.bool)
    targets = torch.randint(0, len(LABELS), (batch,), generator=generator)
    noise = NoiseBank.synthetic(0)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        training_step(model, optimizer, audio, silence, targets, noise, cfg, generator)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(m for m in MODELS if "causal" not in m))
    parser.add_argument("--examples", type=int, default=2657,
                        help="training examples an epoch (default: speech_commands_lite's)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name in args.models.split(","):
        cfg = recipe_config(name, DataConfig(path="(none)"), args.examples)
        ms = step_ms(name, args.examples)
        epochs = cfg.optim.steps * cfg.optim.batch_size / args.examples
        epoch_s = ms / 1000 * args.examples / cfg.optim.batch_size
        rows.append({"model": name, "ms_per_step": round(ms, 1), "batch": cfg.optim.batch_size,
                     "s_per_epoch": round(epoch_s, 1), "recipe_epochs": round(epochs),
                     "recipe_minutes": round(epochs * epoch_s / 60, 1)})
        print(f"{name:20s} {ms:8.0f} ms/step  {epoch_s:7.1f} s/epoch  "
              f"{epochs:5.0f} epochs -> {rows[-1]['recipe_minutes']:6.1f} min", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"threads": 1, "examples_per_epoch": args.examples, "models": rows}, fh,
                      indent=1)
            fh.write("\n")


if __name__ == "__main__":
    main()
