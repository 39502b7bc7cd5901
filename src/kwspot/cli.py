"""The ``kwspot`` command: thin subcommands over the library functions, same parameter names.

Errors the user can fix print as one line (``kwspot: error: ...``); ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from kwspot.errors import KwspotError

DEFAULT_RUN_DIR = "runs/tc-resnet8"


def _words(text: str) -> tuple[str, ...]:
    return tuple(w.strip() for w in text.split(",") if w.strip())


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(","))


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def add_data_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", required=required, metavar="PATH",
                   help="Speech Commands folder (with validation_list.txt/testing_list.txt), "
                        "a folder-per-label dataset, a flat folder (with --label-regex) or a "
                        "CSV manifest (path,label[,split,speaker])")
    g.add_argument("--keywords", type=_words, default=None, metavar="W1,W2,..",
                   help="classes to spot; other labels become _unknown_ and _silence_ is added "
                        "(default: the 10 Speech Commands words for Speech Commands, every "
                        "label otherwise)")
    g.add_argument("--silence-fraction", type=float, default=0.1,
                   help="_silence_ examples per keyword example (default 0.1)")
    g.add_argument("--unknown-fraction", type=float, default=0.1,
                   help="_unknown_ examples per keyword example (default 0.1)")
    g.add_argument("--label-regex", default=None, metavar="RE",
                   help="flat folder: regex with (?P<label>..) and optionally (?P<speaker>..) "
                        r"groups matched on file names, e.g. '^(?P<label>\d)_(?P<speaker>[a-z]+)_'")
    g.add_argument("--validation-pct", type=float, default=10.0,
                   help="without official lists: percent of speakers for validation (default 10)")
    g.add_argument("--test-pct", type=float, default=10.0,
                   help="without official lists: percent of speakers for test (default 10)")
    g.add_argument("--noise-dir", default=None, metavar="DIR",
                   help="background-noise WAVs (default: the dataset's _background_noise_/, "
                        "else synthetic white/pink/brown noise)")


def data_config(args: argparse.Namespace):
    from kwspot.datasets import DataConfig

    return DataConfig(
        path=args.data, keywords=args.keywords, silence_fraction=args.silence_fraction,
        unknown_fraction=args.unknown_fraction, label_regex=args.label_regex,
        validation_pct=args.validation_pct, test_pct=args.test_pct, noise_dir=args.noise_dir,
        seed=getattr(args, "seed", 0),
    )


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    from kwspot.models import MODELS

    p = sub.add_parser("train", help="train a model (the TC-ResNet paper's recipe by default)",
                       description="Train a keyword classifier. Defaults are the TC-ResNet "
                       "paper's recipe: SGD momentum 0.9, batch 100, lr 0.1/0.01/0.001 at "
                       "10k/20k of 30k steps, weight decay 1e-3, dropout 0.5. Validation runs "
                       "every --eval-every steps; the best checkpoint is kept as best.pt.")
    add_data_args(p, required=False)
    p.add_argument("--run-dir", default=DEFAULT_RUN_DIR,
                   help=f"where checkpoints, logs and TensorBoard go (default {DEFAULT_RUN_DIR})")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --run-dir from its last.pt, with its saved config")
    p.add_argument("--model", default="tc-resnet8", choices=sorted(MODELS),
                   help="architecture (default tc-resnet8)")
    p.add_argument("--dropout", type=float, default=0.5, help="dropout before the classifier")
    f = p.add_argument_group("features")
    f.add_argument("--features", choices=("mfcc", "logmel"), default="mfcc",
                   help="front end (default mfcc)")
    f.add_argument("--n-mfcc", type=int, default=40, help="MFCC coefficients (default 40)")
    f.add_argument("--n-mels", type=int, default=40, help="mel bins (default 40)")
    f.add_argument("--window-ms", type=float, default=30.0, help="window length (default 30)")
    f.add_argument("--hop-ms", type=float, default=10.0, help="hop length (default 10)")
    f.add_argument("--f-min", type=float, default=20.0, help="lowest mel edge, Hz (default 20)")
    f.add_argument("--f-max", type=float, default=4000.0, help="highest mel edge, Hz (default 4000)")
    f.add_argument("--clip-ms", type=float, default=1000.0, help="input length (default 1000)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--steps", type=int, default=30_000, help="training steps (default 30000)")
    o.add_argument("--batch-size", type=int, default=100, help="batch size (default 100)")
    o.add_argument("--lr-values", type=_floats, default=(0.1, 0.01, 0.001), metavar="A,B,C",
                   help="piecewise-constant learning rates (default 0.1,0.01,0.001)")
    o.add_argument("--lr-boundaries", type=_ints, default=None, metavar="S1,S2",
                   help="steps where the rate drops (default: 1/3 and 2/3 of --steps, "
                        "i.e. 10000,20000 for 30000 steps)")
    o.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    o.add_argument("--weight-decay", type=float, default=1e-3,
                   help="L2 on conv/linear weights, not BN (default 1e-3)")
    o.add_argument("--eval-every", type=int, default=1000,
                   help="validate and checkpoint every N steps (default 1000)")
    o.add_argument("--seed", type=int, default=0, help="seed; the same seed repeats a run")
    o.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    a = p.add_argument_group("augmentation")
    a.add_argument("--background-prob", type=float, default=0.8,
                   help="probability of mixing background noise (default 0.8)")
    a.add_argument("--background-volume", type=float, default=0.1,
                   help="noise volume is U[0, this] (default 0.1)")
    a.add_argument("--time-shift-ms", type=float, default=100.0,
                   help="random shift of +-this many ms (default 100)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> None:
    from kwspot.augment import AugmentConfig
    from kwspot.config import OptimConfig, TrainConfig
    from kwspot.features import FeatureConfig
    from kwspot.train import train

    if args.resume:
        summary = train(None, args.run_dir, resume=True, quiet=args.quiet)  # type: ignore[arg-type]
    else:
        if not args.data:
            raise KwspotError("train needs --data PATH (or --resume --run-dir DIR)")
        optim = OptimConfig(batch_size=args.batch_size, lr_values=args.lr_values,
                            momentum=args.momentum, weight_decay=args.weight_decay)
        n_bounds = len(args.lr_values) - 1
        default_bounds = tuple(round(30_000 * (i + 1) / len(args.lr_values))
                               for i in range(n_bounds))
        optim = dataclasses.replace(optim, lr_boundaries=default_bounds).scaled_to(args.steps)
        if args.lr_boundaries is not None:
            optim = dataclasses.replace(optim, lr_boundaries=args.lr_boundaries)
            optim.__post_init__()
        cfg = TrainConfig(
            data=data_config(args), model=args.model, dropout=args.dropout,
            features=FeatureConfig(kind=args.features, n_mfcc=args.n_mfcc, n_mels=args.n_mels,
                                   window_ms=args.window_ms, hop_ms=args.hop_ms,
                                   f_min=args.f_min, f_max=args.f_max, clip_ms=args.clip_ms),
            augment=AugmentConfig(background_prob=args.background_prob,
                                  background_volume=args.background_volume,
                                  time_shift_ms=args.time_shift_ms),
            optim=optim, eval_every=args.eval_every, seed=args.seed, threads=args.threads,
        )
        summary = train(cfg, args.run_dir, quiet=args.quiet)
    _print_summary(summary)


def _print_summary(summary: dict) -> None:
    line = (f"trained {summary['model']} for {summary['steps']} steps in "
            f"{summary['train_seconds']:.0f} s; best validation accuracy "
            f"{summary['val_accuracy']:.2%} at step {summary['best_step']}")
    if "test_accuracy" in summary:
        line += f"; test accuracy {summary['test_accuracy']:.2%} ({summary['test_clips']} clips)"
    print(line)
    print(f"checkpoint: {Path(summary['run_dir']) / 'best.pt'}")


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [add_train_parser]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kwspot",
        description="Keyword spotting from research to production: train, evaluate, export, "
                    "benchmark and run TC-ResNet keyword spotters.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except KwspotError as exc:
        if args.debug:
            raise
        print(f"kwspot: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("kwspot: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
