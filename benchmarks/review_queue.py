"""Does model-assisted review order find label errors sooner? Flip 5 % of a split's labels at
random, order the review queue by the model's doubt, and count the flipped clips among the
first N against random order (precision@N).

    python benchmarks/review_queue.py [--data ../shared/data/speech_commands_lite]
        [--split test] [--flip 0.05] [--model M.onnx] [--json docs/results/review-queue.json]

The clips keep their own labels (35 Speech Commands words); the shipped model knows 10
keywords and ``_unknown_``, so a flip between two words it calls ``_unknown_`` (e.g. "bed" ->
"bird") is invisible to it. The report counts those separately. The model never trained on
the test split.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from kwspot.review import ReviewStore
from kwspot.review.clips import ReviewClip, ReviewSet, given_label, read_clips
from kwspot.runtime.model import load_keyword_model

DEFAULT_DATA = Path(__file__).parents[1].parent / "shared" / "data" / "speech_commands_lite"


def flip_labels(clips: list[ReviewClip], fraction: float, seed: int
                ) -> tuple[list[ReviewClip], set[int]]:
    rng = np.random.default_rng(seed)
    labels = sorted({c.label for c in clips})
    flipped = set(int(i) for i in rng.choice(len(clips), round(fraction * len(clips)),
                                             replace=False))
    out = []
    for c in clips:
        label = c.label
        if c.index in flipped:
            label = str(rng.choice([x for x in labels if x != c.label]))
        out.append(ReviewClip(c.index, c.path, label, c.split, c.speaker, c.duration_s))
    return out, flipped


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--split", default="test")
    parser.add_argument("--flip", type=float, default=0.05)
    parser.add_argument("--model", default=None, help="default: the shipped TC-ResNet8")
    parser.add_argument("--seeds", type=int, default=5, help="flip draws to average over")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    clips = [c for c in read_clips(args.data) if c.split == args.split]
    clips = [ReviewClip(i, c.path, c.label, c.split, c.speaker, c.duration_s)
             for i, c in enumerate(clips)]
    model = load_keyword_model(args.model)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # one store for every draw: the posteriors it caches do not depend on the labels
        store = ReviewStore(Path(tmp) / "bench.sqlite")
        for seed in range(args.seeds):
            noisy, flipped = flip_labels(clips, args.flip, seed)
            visible = {i for i in flipped if given_label(clips[i].label, model.labels)
                       != given_label(noisy[i].label, model.labels)}
            by_model = ReviewSet(noisy, store, model, order="model").queue("bench")
            randoms = [ReviewSet(noisy, store, None, order="random", seed=1000 + r).queue("b")
                       for r in range(20)]
            row = {"seed": seed, "flipped": len(flipped), "visible_to_model": len(visible)}
            for n in (100, 200):
                row[f"model_top{n}"] = len(flipped & set(by_model[:n]))
                row[f"model_top{n}_visible"] = len(visible & set(by_model[:n]))
                row[f"random_top{n}"] = round(float(np.mean(
                    [len(flipped & set(q[:n])) for q in randoms])), 2)
            rows.append(row)
            print(json.dumps(row), flush=True)
    mean = {k: round(float(np.mean([r[k] for r in rows])), 2) for k in rows[0] if k != "seed"}
    report = {"command": "python benchmarks/review_queue.py " + " ".join(argv or sys.argv[1:]),
              "data": str(args.data), "split": args.split, "clips": len(clips),
              "flip": args.flip, "model": model.path.name, "mean": mean, "draws": rows}
    for n in (100, 200):
        report[f"precision_at_{n}"] = {"model": round(mean[f"model_top{n}"] / n, 3),
                                       "random": round(mean[f"random_top{n}"] / n, 3)}
    print(json.dumps({k: report[k] for k in ("clips", "mean", "precision_at_100",
                                             "precision_at_200")}))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
