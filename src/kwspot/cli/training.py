"""``kwspot train`` and ``kwspot table``: the training stage."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kwspot.cli.common import (
    DEFAULT_RUN_DIR,
    _floats,
    _given,
    _ints,
    _words,
    add_data_args,
    data_config,
)
from kwspot.errors import KwspotError


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model with its published recipe",
                       description="Train a keyword classifier. --model picks the "
                       "architecture and its published recipe (features, optimizer, schedule, "
                       "dropout, SpecAugment; see `kwspot.training.recipes`), its length in "
                       "epochs of the data; every option below overrides one part of it. "
                       "TC-ResNet's: SGD momentum 0.9, batch 100, lr 0.1/0.01/0.001 at 1/3 "
                       "and 2/3, weight decay 1e-3, dropout 0.5, 40 MFCCs (the paper ran "
                       "30000 steps: --steps 30000). Validation runs every --eval-every "
                       "steps; the best checkpoint is kept as best.pt.")
    add_data_args(p, required=False)
    p.add_argument("--run-dir", default=DEFAULT_RUN_DIR,
                   help=f"where checkpoints, logs and TensorBoard go (default {DEFAULT_RUN_DIR})")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --run-dir from its last.pt, with its saved config")
    p.add_argument("--model", default="tc-resnet8",
                   help="architecture and recipe (default tc-resnet8; an unknown name lists "
                        "the choices)")
    p.add_argument("--dropout", type=float, default=None, help="dropout (default: the recipe's)")
    p.add_argument("--init", default=None, metavar="CHECKPOINT",
                   help="start from this checkpoint's weights (fine-tuning, e.g. after "
                        "`kwspot mine`); same model and labels")
    f = p.add_argument_group("features (default: the recipe's)")
    f.add_argument("--features", choices=("mfcc", "logmel"), default=None, help="front end")
    f.add_argument("--n-mfcc", type=int, default=None, help="MFCC coefficients")
    f.add_argument("--n-mels", type=int, default=None, help="mel bins")
    f.add_argument("--window-ms", type=float, default=None, help="window length")
    f.add_argument("--hop-ms", type=float, default=None, help="hop length")
    f.add_argument("--f-min", type=float, default=None, help="lowest mel edge, Hz")
    f.add_argument("--f-max", type=float, default=None, help="highest mel edge, Hz")
    f.add_argument("--clip-ms", type=float, default=None, help="input length")
    o = p.add_argument_group("optimisation (default: the recipe's)")
    o.add_argument("--epochs", type=float, default=None,
                   help="passes over the training split (default: the recipe's)")
    o.add_argument("--steps", type=int, default=None, help="training steps (instead of --epochs)")
    o.add_argument("--batch-size", type=int, default=None, help="batch size")
    o.add_argument("--lr-values", type=_floats, default=None, metavar="A,B,C",
                   help="piecewise-constant learning rates")
    o.add_argument("--lr-boundaries", type=_ints, default=None, metavar="S1,S2",
                   help="steps where the rate drops (default: the recipe's fractions of the "
                        "run, e.g. 1/3 and 2/3)")
    o.add_argument("--momentum", type=float, default=None, help="SGD momentum")
    o.add_argument("--weight-decay", type=float, default=None,
                   help="L2 on conv/linear weights, not BN")
    o.add_argument("--eval-every", type=int, default=None,
                   help="validate and checkpoint every N steps (default: every 5 epochs)")
    o.add_argument("--seed", type=int, default=0, help="seed; the same seed repeats a run")
    o.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    o.add_argument("--device", default=None, metavar="cpu|cuda[:N]",
                   help="where the network trains (default cpu; with --resume, the run's own "
                        "unless given); augmentation and its random draws stay on the CPU")
    a = p.add_argument_group("augmentation")
    a.add_argument("--background-prob", type=float, default=0.8,
                   help="probability of mixing background noise (default 0.8)")
    a.add_argument("--background-volume", type=float, default=0.1,
                   help="noise volume is U[0, this] (default 0.1)")
    a.add_argument("--time-shift-ms", type=float, default=100.0,
                   help="random shift of +-this many ms (default 100)")
    a.add_argument("--noise-rms", type=float, default=None, metavar="RMS",
                   help="rescale every noise recording to this RMS before mixing (default: "
                        "as recorded, the paper's recipe); e.g. 0.1 makes silence cover loud "
                        "rooms")
    a.add_argument("--spec-augment", type=_spec_augment, default=None,
                   metavar="FM,FW,TM,TW",
                   help="SpecAugment on the features: FM frequency masks of up to FW-1 "
                        "channels and TM time masks of up to TW-1 frames, e.g. 2,7,2,20 "
                        "(BC-ResNet-8's); 'off' disables it (default: the recipe's)")
    a.add_argument("--history-ms", type=float, default=0.0, metavar="MS",
                   help="causal models: put this much audio (other training clips or "
                        "silence, noise running on) before each clip and train the window a "
                        "stream scores, with real history in the convs (default 0: clips "
                        "alone)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)


def train_config_from_args(args: argparse.Namespace):
    """The model's recipe for this data, with every option the user gave put over it."""
    import dataclasses

    from kwspot.datasets import open_dataset
    from kwspot.training.augment import AugmentConfig
    from kwspot.training.recipes import eval_interval, recipe_config

    data = data_config(args)
    if args.steps is not None and args.steps < 1:
        raise KwspotError(f"--steps must be at least 1, got {args.steps}")
    if args.batch_size is not None and args.batch_size < 1:
        raise KwspotError(f"--batch-size must be at least 1, got {args.batch_size}")
    train_clips = len(open_dataset(data).split("train"))
    cfg = recipe_config(args.model, data, max(train_clips, 1), args.seed, args.epochs,
                        args.eval_every, args.threads, args.device or "cpu")
    features = dataclasses.replace(cfg.features, **_given(args, {
        "features": "kind", "n_mfcc": "n_mfcc", "n_mels": "n_mels", "window_ms": "window_ms",
        "hop_ms": "hop_ms", "f_min": "f_min", "f_max": "f_max", "clip_ms": "clip_ms"}))
    optim = cfg.optim
    if args.batch_size is not None and args.steps is None:  # same epochs, other batches
        optim = optim.scaled_to(max(1, round(optim.steps * optim.batch_size / args.batch_size)))
    if args.steps is not None:
        optim = optim.scaled_to(args.steps)
    optim = dataclasses.replace(optim, **_given(args, {
        "batch_size": "batch_size", "momentum": "momentum", "weight_decay": "weight_decay"}))
    if args.lr_values is not None:
        n = len(args.lr_values)
        bounds = args.lr_boundaries or tuple(round(optim.steps * (i + 1) / n)
                                             for i in range(n - 1))
        optim = dataclasses.replace(optim, lr_values=args.lr_values, lr_boundaries=bounds)
    elif args.lr_boundaries is not None:
        optim = dataclasses.replace(optim, lr_boundaries=args.lr_boundaries)
    optim = dataclasses.replace(optim)  # re-validate the combination
    if args.eval_every is None:  # every 5 epochs of the final batch size
        cfg = dataclasses.replace(cfg, eval_every=eval_interval(max(train_clips, 1),
                                                                optim.batch_size))
    augment = AugmentConfig(background_prob=args.background_prob,
                            background_volume=args.background_volume,
                            time_shift_ms=args.time_shift_ms, noise_rms=args.noise_rms,
                            history_ms=args.history_ms)
    return dataclasses.replace(
        cfg, features=features, optim=optim, augment=augment, init=args.init,
        dropout=cfg.dropout if args.dropout is None else args.dropout,
        spec_augment=cfg.spec_augment if args.spec_augment is None else args.spec_augment)


def _spec_augment(text: str):
    """'FM,FW,TM,TW' or 'off' -> SpecAugmentConfig (argparse type)."""
    from kwspot.training.augment import SpecAugmentConfig

    if text.strip().lower() == "off":
        return SpecAugmentConfig()
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or min(values) < 0:
        raise argparse.ArgumentTypeError(
            f"expected four counts FM,FW,TM,TW (e.g. 2,7,2,20) or 'off', got {text!r}")
    return SpecAugmentConfig(*values)


def cmd_train(args: argparse.Namespace) -> None:
    from kwspot.training.loop import train

    if args.resume:
        if args.data:
            print(f"--resume continues with the settings saved in {args.run_dir}/config.json; "
                  "other options are ignored", file=sys.stderr)
        summary = train(None, args.run_dir, resume=True, quiet=args.quiet, device=args.device)
    else:
        if not args.data:
            raise KwspotError("train needs --data PATH (or --resume --run-dir DIR)")
        from kwspot.models import MODELS

        if args.model not in MODELS:
            raise KwspotError(f"unknown model {args.model!r}; available: "
                              f"{', '.join(sorted(MODELS))}")
        summary = train(train_config_from_args(args), args.run_dir, quiet=args.quiet)
    _print_summary(summary)


def _print_summary(summary: dict) -> None:
    line = (f"trained {summary['model']} for {summary['steps']} steps in "
            f"{summary['train_seconds']:.0f} s; best validation accuracy "
            f"{summary['val_accuracy']:.2%} at step {summary['best_step']}")
    if "test_accuracy" in summary:
        line += f"; test accuracy {summary['test_accuracy']:.2%} ({summary['test_clips']} clips)"
    print(line)
    for key in ("val_accuracy_mode", "test_accuracy_mode"):
        if key in summary:
            print(f"{key.split('_')[0]}: {summary[key]}")
    print(f"checkpoint: {Path(summary['run_dir']) / 'best.pt'}")


def add_table_parser(sub: argparse._SubParsersAction) -> None:
    from kwspot.experiments.table import TableConfig

    defaults = TableConfig(prepared="")
    p = sub.add_parser("table", help="the paper's comparison: every model, several seeds, "
                       "one prepared data set", description="Train (or reuse finished runs "
                       "of) every model on one prepared manifest with several seeds, evaluate "
                       "on its test split, time each network on this machine (ONNX Runtime, "
                       "one thread), and write table.md, table.csv and table.png. Each "
                       "(model, seed) writes a small result file and is skipped when it "
                       "exists, so the table is built in pieces and resumes; it shows every result "
                       "file in --results, whatever --models and --seeds pick to run.")
    p.add_argument("--data", required=True, metavar="PREPARED",
                   help="prepared data (`kwspot prepare`)")
    p.add_argument("--models", type=_words, default=defaults.models, metavar="M1,M2,..",
                   help="models to run (default: the paper's table, its ablation and "
                        "BC-ResNet)")
    p.add_argument("--seeds", type=_ints, default=defaults.seeds, metavar="S1,S2,..",
                   help="training seeds (default 0,1,2)")
    p.add_argument("--epochs", action="append", default=[], metavar="MODEL=EPOCHS",
                   help="override a model's recipe length (a job of its own: "
                        "MODEL-eEPOCHS-seedK); repeatable")
    p.add_argument("--results", default=defaults.results_dir, metavar="DIR",
                   help=f"result files and the table (default {defaults.results_dir})")
    p.add_argument("--runs-dir", default=defaults.runs_dir, metavar="DIR",
                   help=f"checkpoints (default {defaults.runs_dir}; keep out of git)")
    p.add_argument("--threads", type=int, default=defaults.threads,
                   help="torch threads per job (default 1; jobs run side by side on Ray)")
    p.add_argument("--device", default=defaults.device, metavar="cpu|cuda[:N]",
                   help="where each job trains (default cpu); latency is always timed on "
                        "this machine's CPU")
    p.add_argument("--workers", type=int, default=defaults.workers,
                   help="jobs side by side in local processes (default 1; several share one "
                        "GPU well); --ray spreads them instead")
    p.add_argument("--latency-runs", type=int, default=defaults.latency_runs,
                   help="timed runs per model (default 1000)")
    p.add_argument("--ray", action="store_true",
                   help="run jobs as Ray tasks on a local Ray (kwspot[scale])")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="run jobs on this Ray cluster (e.g. ray://head:10001); workers "
                        "must see the same data and result paths")
    p.add_argument("--no-train", action="store_true",
                   help="only tabulate the result files present (and time the models)")
    p.add_argument("--remeasure-latency", action="store_true",
                   help="time every model again, side by side (e.g. on a quiet machine)")
    p.set_defaults(func=cmd_table)


def cmd_table(args: argparse.Namespace) -> None:
    from kwspot.experiments.table import TableConfig, build_table, parse_epochs

    if args.latency_runs < 1 or args.threads < 1 or args.workers < 1:
        raise KwspotError("--latency-runs, --threads and --workers must be at least 1")
    cfg = TableConfig(prepared=args.data, results_dir=args.results, runs_dir=args.runs_dir,
                      models=args.models, seeds=args.seeds, epochs=parse_epochs(args.epochs),
                      threads=args.threads, device=args.device, workers=args.workers,
                      latency_runs=args.latency_runs, ray=args.ray,
                      ray_address=args.ray_address, remeasure_latency=args.remeasure_latency)

    def report(result) -> None:
        r = result.record
        print(f"{result.job.name}: test {r['test_accuracy']:.2%} ({r['train_seconds']:.0f} s "
              f"training) -> {result.path}", flush=True)

    rows = build_table(cfg, report, train=not args.no_train)
    print(Path(args.results, "table.md").read_text())
    print(f"{len(rows)} models; table: {Path(args.results) / 'table.md'}")
