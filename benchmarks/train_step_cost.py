"""What one training step of each model costs on this machine, to plan `kwspot table`: one
thread, the model's own recipe (features, batch size, SpecAugment), front end included, median
of a few steps after warm-up; printed as ms a step, seconds an epoch of N examples and minutes
for the recipe's epochs.

    python benchmarks/train_step_cost.py [--models a,b] [--examples 2657] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from kwspot.augment import spec_augment
from kwspot.classifier import KeywordClassifier
from kwspot.models import MODELS
from kwspot.recipes import recipe_for


def step_ms(name: str, steps: int = 5, warmup: int = 2) -> float:
    recipe = recipe_for(name)
    features, batch = recipe.features, recipe.optim.batch_size
    model = KeywordClassifier(name, [str(i) for i in range(12)], features, recipe.dropout)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    audio = torch.randn(batch, features.clip_samples, generator=generator) * 0.1
    targets = torch.randint(0, 12, (batch,), generator=generator)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        feats = spec_augment(model.frontend(audio), recipe.spec_augment, generator)
        loss = torch.nn.functional.cross_entropy(model.network(feats), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
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
        recipe = recipe_for(name)
        ms = step_ms(name)
        epoch_s = ms / 1000 * args.examples / recipe.optim.batch_size
        rows.append({"model": name, "ms_per_step": round(ms, 1),
                     "batch": recipe.optim.batch_size, "s_per_epoch": round(epoch_s, 1),
                     "recipe_epochs": recipe.epochs,
                     "recipe_minutes": round(recipe.epochs * epoch_s / 60, 1)})
        print(f"{name:20s} {ms:8.0f} ms/step  {epoch_s:7.1f} s/epoch  "
              f"{recipe.epochs:5.0f} epochs -> {rows[-1]['recipe_minutes']:6.1f} min", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"threads": 1, "examples_per_epoch": args.examples, "models": rows}, fh,
                      indent=1)
            fh.write("\n")


if __name__ == "__main__":
    main()
