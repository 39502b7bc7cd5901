"""The ``kwspot`` command: thin subcommands over the library functions, same parameter names.

Errors the user can fix print as one line (``kwspot: error: ...``); ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from kwspot.errors import KwspotError

DEFAULT_RUN_DIR = "runs/tc-resnet8"


def _words(text: str) -> tuple[str, ...]:
    from kwspot.data import parse_words

    return parse_words(text)


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(","))


def _fraction_or_all(text: str) -> float:
    import math

    if text.strip().lower() == "all":
        return math.inf
    value = float(text)
    if not value >= 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"expected a fraction >= 0 or 'all', got {text!r}")
    return value


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def add_data_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", required=required, metavar="PATH",
                   help="Speech Commands folder (with validation_list.txt/testing_list.txt), "
                        "a folder-per-label dataset, a flat folder (with --label-regex), a "
                        "CSV manifest (path,label[,split,speaker]), prepared data (`kwspot "
                        "prepare`) or a run directory (the exact clips it used)")
    g.add_argument("--keywords", type=_words, default=None, metavar="W1,W2,..",
                   help="classes to spot; other labels become _unknown_ and _silence_ is added "
                        "(default: the 10 Speech Commands words for Speech Commands, every "
                        "label otherwise)")
    g.add_argument("--silence-fraction", type=float, default=0.1,
                   help="_silence_ examples per keyword example (default 0.1)")
    g.add_argument("--unknown-fraction", type=float, default=0.1,
                   help="_unknown_ examples per keyword example (default 0.1)")
    g.add_argument("--train-unknown-fraction", type=_fraction_or_all, default=None,
                   metavar="F|all",
                   help="training split only: _unknown_ per keyword example, or 'all' to use "
                        "every non-keyword clip (default: as --unknown-fraction); validation "
                        "and test keep --unknown-fraction")
    g.add_argument("--negatives", action="append", default=[], metavar="DIR",
                   help="folder of extra non-keyword audio (e.g. from `kwspot negatives` or "
                        "`kwspot mine`), every file a training _unknown_ clip; repeatable")
    g.add_argument("--label-regex", default=None, metavar="RE",
                   help="flat folder: regex with (?P<label>..) and optionally (?P<speaker>..) "
                        r"groups matched on file names, e.g. '^(?P<label>\d)_(?P<speaker>[a-z]+)_'")
    g.add_argument("--validation-pct", type=float, default=10.0,
                   help="without official lists: percent of speakers for validation (default 10)")
    g.add_argument("--test-pct", type=float, default=10.0,
                   help="without official lists: percent of speakers for test (default 10)")
    g.add_argument("--data-seed", type=int, default=None, metavar="SEED",
                   help="seed of the recipe's _unknown_ and _silence_ draws, separate from the "
                        "training seed so every run sees the same clips (default 0; eval: the "
                        "model's own)")
    g.add_argument("--noise-dir", default=None, metavar="DIR",
                   help="background-noise WAVs (default: the dataset's _background_noise_/, "
                        "else synthetic white/pink/brown noise)")


def data_config(args: argparse.Namespace):
    from kwspot.datasets import DataConfig

    return DataConfig(
        path=args.data, keywords=args.keywords, silence_fraction=args.silence_fraction,
        unknown_fraction=args.unknown_fraction, label_regex=args.label_regex,
        validation_pct=args.validation_pct, test_pct=args.test_pct, noise_dir=args.noise_dir,
        seed=args.data_seed or 0,
        train_unknown_fraction=args.train_unknown_fraction, negatives=tuple(args.negatives),
    )


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model with its published recipe",
                       description="Train a keyword classifier. --model picks the "
                       "architecture and its published recipe (features, optimizer, schedule, "
                       "dropout, SpecAugment; see `kwspot.recipes`), its length in epochs of "
                       "the data; every option below overrides one part of it. TC-ResNet's: "
                       "SGD momentum 0.9, batch 100, lr 0.1/0.01/0.001 at 1/3 and 2/3, weight "
                       "decay 1e-3, dropout 0.5, 40 MFCCs (the paper ran 30000 steps: "
                       "--steps 30000). Validation runs every --eval-every steps; the best "
                       "checkpoint is kept as best.pt.")
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
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)


def _given(args: argparse.Namespace, names: dict[str, str]) -> dict:
    """The options the user set: {config field: value} for the non-None ones."""
    return {field: getattr(args, arg) for arg, field in names.items()
            if getattr(args, arg) is not None}


def train_config_from_args(args: argparse.Namespace):
    """The model's recipe for this data, with every option the user gave put over it."""
    import dataclasses

    from kwspot.augment import AugmentConfig
    from kwspot.datasets import open_dataset
    from kwspot.recipes import eval_interval, recipe_config

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
                            time_shift_ms=args.time_shift_ms, noise_rms=args.noise_rms)
    return dataclasses.replace(
        cfg, features=features, optim=optim, augment=augment, init=args.init,
        dropout=cfg.dropout if args.dropout is None else args.dropout)


def cmd_train(args: argparse.Namespace) -> None:
    from kwspot.train import train

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
    print(f"checkpoint: {Path(summary['run_dir']) / 'best.pt'}")


def add_prepare_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="fix a dataset's recipe once: labels, draws, splits",
                       description="Resolve a dataset's recipe (class labels in order, the "
                       "_unknown_ and _silence_ draws, the noise files, the splits, speakers) "
                       "into OUT/manifest.jsonl + OUT/prepared.json with a checksum. Train, "
                       "eval and table read --data OUT: every model and seed then sees the "
                       "same test clips, and every report names the checksum.")
    add_data_args(p)
    p.add_argument("--out", required=True, metavar="DIR", help="the prepared-data folder")
    p.add_argument("--force", action="store_true",
                   help="replace other prepared data already in --out")
    p.set_defaults(func=cmd_prepare)


def cmd_prepare(args: argparse.Namespace) -> None:
    from kwspot.datasets.prepare import prepare_dataset

    info = prepare_dataset(data_config(args), args.out, force=args.force)
    for split, counts in info["counts"].items():
        print(f"{split}: {sum(counts.values())} clips, "
              f"{info['speakers']['per_split'][split]} speakers")
    print(f"labels: {', '.join(info['labels'])}")
    print(f"noise files: {len(info['noise'])}")
    if info["speakers"]["one_per_file"]:
        print("warning: the data names no speakers (each file counts as one), so held-out "
              "splits may share voices; give speakers (a CSV column, --label-regex "
              "(?P<speaker>..), or <speaker>_nohash_<n> file names)", file=sys.stderr)
    if info["speakers"]["crossing_splits"]:
        print(f"warning: {info['speakers']['crossing_splits']} speakers are in more than one "
              "split (the data's own lists put them there)", file=sys.stderr)
    print(f"checksum {info['checksum']}\nprepared: {args.out}")


def add_table_parser(sub: argparse._SubParsersAction) -> None:
    from kwspot.experiments.table import TableConfig

    defaults = TableConfig(prepared="")
    p = sub.add_parser("table", help="the paper's comparison: every model, several seeds, "
                       "one prepared data set", description="Train (or reuse finished runs "
                       "of) every model on one prepared manifest with several seeds, evaluate "
                       "on its test split, time each network on this machine (ONNX Runtime, "
                       "one thread), and write table.md, table.csv and table.png. Each "
                       "(model, seed) writes a small result file and is skipped when it "
                       "exists, so the table is built in pieces and resumes.")
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


def add_eval_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="accuracy, per-class precision/recall and confusion matrix",
                       description="Evaluate a checkpoint (.pt or run dir) or an exported .onnx "
                       "on a dataset split; writes report.json, confusion.txt and confusion.png.")
    p.add_argument("model", help="checkpoint file, run directory (uses best.pt) or .onnx")
    add_data_args(p)
    p.add_argument("--split", default="auto",
                   choices=("auto", "train", "validation", "test", "all"),
                   help="which clips (default auto: 'test' for data with splits -- Speech "
                        "Commands, CSV, prepared data, a run, a --label-regex folder -- and "
                        "'all' for a plain label folder such as Google's prepared test set)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="report folder (default: <run dir>/eval-<data name>)")
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    from kwspot.checkpoint import run_dir_of
    from kwspot.datasets import default_eval_split
    from kwspot.evaluate import run_evaluation
    from kwspot.runtime.model import is_exported

    data = Path(args.data)
    split = args.split
    if split == "auto":
        split = default_eval_split(data_config(args))
        if split == "all":
            print(f"scoring every clip of {data} (a label folder has no split lists; "
                  "--split test scores its held-out speakers only)", file=sys.stderr)
    model = Path(args.model)
    # reports of a run go into the run; of an exported model, under the current folder (never
    # into an installed package's folder)
    name = f"eval-{data.stem or data.name}"
    out = Path(args.out) if args.out else (
        Path("reports") / f"{model.stem}-{name}" if is_exported(model)
        else run_dir_of(model) / name)
    report, bad, mapping = run_evaluation(model, data_config(args), split, out, args.data_seed)
    console = Console()
    table = Table(title=f"{model} on {data} [{split}]")
    for col in ("class", "precision", "recall", "f1", "support"):
        table.add_column(col, justify="right" if col != "class" else "left")
    for label, m in report.per_class().items():
        table.add_row(label, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}",
                      str(m["support"]))
    console.print(table)
    print(report.confusion_text())
    if bad:
        print(f"skipped {len(bad)} unreadable files (listed in report.json)")
    merged = sorted(k for k, v in mapping.items() if k != v)
    if merged:
        print(f"counted as _unknown_: {', '.join(merged)}")
    print(f"accuracy {report.accuracy:.2%} on {report.total} clips")
    print(f"report: {out / 'report.json'}  confusion: {out / 'confusion.png'}")


def add_export_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export to ONNX or TFLite (audio in, posteriors out) + "
                       "model card", description="Export a checkpoint to ONNX or TFLite, float32 "
                       "or int8, with the feature front end inside the graph, plus a JSON model "
                       "card (also embedded in the file). Fails if the runtime and PyTorch "
                       "disagree by more than --tolerance on the check clips.")
    p.add_argument("checkpoint", help="checkpoint file or run directory (uses best.pt); "
                   "'shipped' for the shipped TC-ResNet8")
    p.add_argument("--out", default=None, metavar="FILE.onnx|FILE.tflite",
                   help="output model (default <run dir>/export/<model>.onnx or .tflite)")
    p.add_argument("--check-data", default=None, metavar="PATH",
                   help="folder of audio clips for the parity check (default: synthetic "
                        "speech-like signals)")
    p.add_argument("--check-clips", type=int, default=32, help="clips for the parity check")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest allowed |export - torch| posterior difference of the float "
                        "graphs (default 1e-4)")
    p.add_argument("--format", choices=["onnx", "tflite"], default="onnx",
                   help="onnx (ONNX Runtime) or tflite (ai-edge-litert; pip install "
                        "'kwspot[tflite]'); an --out suffix that says otherwise is an error")
    p.add_argument("--precision", choices=["float32", "int8"], default="float32",
                   help="int8: post-training static quantization of the network, calibrated "
                        "on --calibration-clips training clips (front end stays float)")
    p.add_argument("--calibration-data", default=None, metavar="MANIFEST",
                   help="manifest (or dataset folder/CSV) whose train split is drawn for "
                        "int8 calibration (default: the run's manifest.jsonl)")
    p.add_argument("--calibration-clips", type=int, default=300, metavar="N",
                   help="calibration clips for int8 (default 300)")
    p.add_argument("--calibration-seed", type=int, default=0, metavar="SEED",
                   help="seed drawing the calibration clips (default 0; logged in the card)")
    p.add_argument("--no-stream-graph", action="store_true",
                   help="a causal model: leave out its incremental graph (<name>.stream.onnx), "
                        "so the engine scores zero-history 1 s windows every 100 ms, as the "
                        "model was trained, instead of streaming it with real history")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> None:
    from kwspot.checkpoint import load_classifier, run_dir_of
    from kwspot.export import card_path, export_onnx, parity_clips
    from kwspot.runtime.model import SHIPPED

    suffix = "." + args.format
    if args.out and Path(args.out).suffix.lower() != suffix:
        raise KwspotError(f"--out {args.out}: {args.format} models end in {suffix} "
                          f"(use --format to choose the format)")
    if args.calibration_clips < 1:
        raise KwspotError(f"--calibration-clips must be at least 1, got {args.calibration_clips}")
    if args.checkpoint == SHIPPED:
        if args.precision == "int8" and not args.calibration_data:
            raise KwspotError("the shipped model has no run manifest: give --calibration-data "
                              "(e.g. the Speech Commands folder it was trained on)")
        if not args.out:
            raise KwspotError("exporting the shipped model needs --out FILE")
    model, record = load_classifier(args.checkpoint)
    tag = "" if args.precision == "float32" else f".{args.precision}"
    out = Path(args.out) if args.out else (
        run_dir_of(args.checkpoint) / "export" / f"{model.model_name}{tag}{suffix}")
    audio = parity_clips(args.check_data, args.check_clips, model.features.clip_samples)
    calibration = None
    if args.precision == "int8":
        from kwspot.export.calibration import calibration_clips, calibration_log

        manifest = Path(args.calibration_data or run_dir_of(args.checkpoint) / "manifest.jsonl")
        clips, paths = calibration_clips(manifest, args.calibration_clips,
                                         args.calibration_seed, model.features.clip_samples,
                                         model.features.sample_rate)
        calibration = (clips, calibration_log(paths, args.calibration_seed, str(manifest)))
        print(f"int8 calibration: {len(paths)} training clips from {manifest} "
              f"(seed {args.calibration_seed})")
    if args.format == "tflite":
        from kwspot.export.tflite import export_tflite

        card = export_tflite(model, out, audio, record, tolerance=args.tolerance,
                             precision=args.precision, calibration=calibration)
    else:
        card = export_onnx(model, out, audio, record, tolerance=args.tolerance,
                           precision=args.precision, calibration=calibration,
                           stream_graph=not args.no_stream_graph)
    graphs = [card[k]["file"] for k in ("network", "stream") if isinstance(card.get(k), dict)]
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB), {', '.join(graphs)} "
          f"and {card_path(out)}")
    print(f"parity: max |{args.format} - torch| = {card['parity']['max_abs_diff']:.2e} "
          f"on {card['parity']['clips']} clips")
    if "stream" in card:
        print(f"incremental stream graph: one output every {card['detector']['hop_ms']:g} ms; "
              f"parity {card['stream']['parity']['max_abs_diff']:.2e}")
    if "quantization" in card:
        print(f"int8: max |int8 - torch| = "
              f"{card['quantization']['max_abs_diff_from_float']:.2e} (accuracy: "
              f"`kwspot verify-export {out} --data DATA`)")


def add_verify_export_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify-export", help="an export's accuracy, parity, size and latency",
                       description="Run an exported model on a test split beside its PyTorch "
                       "checkpoint: both accuracies on the same clips, the largest posterior "
                       "difference, file sizes, and single-clip latency (median/p90, one "
                       "thread).")
    p.add_argument("model", help="exported model (.onnx or .tflite, with its card)")
    add_data_args(p)
    p.add_argument("--split", default="test", choices=("train", "validation", "test", "all"),
                   help="which clips (default test)")
    p.add_argument("--checkpoint", default=None, metavar="PT",
                   help="the checkpoint it was exported from (run dir, .pt, or shipped), "
                        "for comparison")
    p.add_argument("--runs", type=int, default=1000, help="latency runs (default 1000)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the result here")
    p.set_defaults(func=cmd_verify_export)


def cmd_verify_export(args: argparse.Namespace) -> None:
    import json

    from kwspot.evaluate.verify import verify_export
    from kwspot.fileio import atomic_write_text

    if args.runs < 1:
        raise KwspotError(f"--runs must be at least 1, got {args.runs}")
    result = verify_export(args.model, data_config(args), args.split, args.checkpoint,
                           args.runs, args.data_seed)
    print(f"{result['model']} on {result['data']} [{result['split']}], {result['clips']} clips")
    print(f"  accuracy: {result['accuracy']:.2%}")
    if "checkpoint" in result:
        print(f"  PyTorch checkpoint: {result['checkpoint_accuracy']:.2%} "
              f"(difference {100 * (result['accuracy'] - result['checkpoint_accuracy']):+.2f} pp)"
              f"; max |posterior difference| {result['max_abs_diff']:.2e}; same top class on "
              f"{result['argmax_agreement']:.2%} of clips")
    sizes = ", ".join(f"{name} {size / 1024:.0f} KiB" for name, size in
                      result["size_bytes"].items())
    print(f"  size: {sizes}")
    latency = result["latency_ms"]
    print(f"  latency (one clip, one thread, {latency['runs']} runs): median "
          f"{latency['median']:.3f} ms, p90 {latency['p90']:.3f} ms")
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")


def add_detect_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect", help="find keywords in recordings of any length",
                       description="Stream each file through the detector (decoded block by "
                       "block, so hours of audio need little memory) and print every detected "
                       "keyword with its time and score. Posteriors are averaged over "
                       "--smooth-ms; a keyword fires when it reaches its threshold (the model "
                       "card's calibrated thresholds unless --threshold is given), then nothing "
                       "fires until the scores fall and --refractory-ms has passed. '-' reads "
                       "a WAV from standard input. Uses the shipped TC-ResNet8 unless --model "
                       "is given.")
    p.add_argument("files", nargs="+", help="audio files (WAV/FLAC/OGG, any rate, mono/stereo) "
                   "or - for standard input")
    add_detector_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object per detection")
    p.set_defaults(func=cmd_detect)


def add_detector_args(p: argparse.ArgumentParser, with_model: bool = True) -> None:
    if with_model:
        p.add_argument("--model", default=None, metavar="FILE.onnx|FILE.tflite",
                       help="exported model (.onnx, or .tflite with kwspot[tflite]) and its "
                            "card (default: the shipped TC-ResNet8 trained on Speech Commands)")
    p.add_argument("--keywords", type=_words, default=None, metavar="W1,W2,..",
                   help="only report these (default: every class but _silence_/_unknown_)")
    p.add_argument("--threshold", type=float, default=None,
                   help="one threshold for every keyword (default: the card's calibrated "
                        "per-keyword thresholds, else 0.8)")
    p.add_argument("--hop-ms", type=float, default=None,
                   help="window hop (default: the model card's, else 100)")
    p.add_argument("--smooth-ms", type=float, default=300.0,
                   help="posterior smoothing span (default 300)")
    p.add_argument("--refractory-ms", type=float, default=1000.0,
                   help="quiet time after a detection (default 1000)")


def detector_config(args: argparse.Namespace):
    from kwspot.runtime.detector import DetectorConfig

    return DetectorConfig(threshold=args.threshold, hop_ms=args.hop_ms,
                          smooth_ms=args.smooth_ms, refractory_ms=args.refractory_ms)


def cmd_detect(args: argparse.Namespace) -> None:
    import io
    import json

    from kwspot.audio import iter_audio_blocks
    from kwspot.errors import AudioError
    from kwspot.runtime.detector import Detector, detect_blocks
    from kwspot.runtime.model import load_keyword_model

    model = load_keyword_model(args.model)
    cfg = detector_config(args)
    keywords = list(args.keywords) if args.keywords else None
    failures = 0
    for file in args.files:
        source = io.BytesIO(sys.stdin.buffer.read()) if file == "-" else file
        try:
            blocks = iter_audio_blocks(source, model.sample_rate)
            events = detect_blocks(blocks, Detector(model, cfg, keywords))
        except AudioError as exc:
            print(f"kwspot: error: {exc}", file=sys.stderr)
            failures += 1
            continue
        for e in events:
            if args.json:
                print(json.dumps({"file": file, "keyword": e.keyword,
                                  "time_s": round(e.time_s, 2), "score": round(e.score, 3)}))
            else:
                print(f"{file}\t{e.time_s:7.2f}s\t{e.keyword}\t{e.score:.3f}")
        if not events and not args.json:
            print(f"{file}\t(no keyword)")
    if failures:
        raise KwspotError(f"{failures} of {len(args.files)} files could not be read")


def add_listen_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("listen", help="detect keywords on the microphone, live",
                       description="Stream the default (or --device) microphone through the "
                       "detector and print each keyword as it fires. Needs the optional "
                       "sounddevice package: pip install 'kwspot[listen]'.")
    add_detector_args(p)
    p.add_argument("--device", default=None, help="input device name or index")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long")
    p.set_defaults(func=cmd_listen)


def cmd_listen(args: argparse.Namespace) -> None:
    from kwspot.runtime.listen import listen

    def show(event) -> None:
        print(f"{event.end_s:8.2f}s\t{event.keyword}\t{event.score:.3f}", flush=True)

    device = int(args.device) if args.device and args.device.isdigit() else args.device
    listen(args.model, detector_config(args), device, args.seconds, show,
           on_start=lambda: print("listening; Ctrl-C stops", file=sys.stderr))


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="HTTP/WebSocket detection server with a browser demo",
                       description="Serve a model over HTTP (POST /v1/detect, /v1/classify) "
                       "and WebSocket (/v1/stream: PCM in, events out), with /healthz, "
                       "/metrics (Prometheus) and a microphone demo at /. Windows from all "
                       "streams are micro-batched into one model call. Binding to a "
                       "non-loopback address needs an API key (KWSPOT_API_KEY or "
                       "--api-key-file). Needs the optional extra: pip install "
                       "'kwspot[serve]'.")
    add_detector_args(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--api-key-file", default=None, metavar="FILE",
                   help="file holding the bearer token clients must send (default: "
                        "$KWSPOT_API_KEY; required off loopback)")
    p.add_argument("--batch-wait-ms", type=float, default=2.0,
                   help="longest a window waits for others to share a model call; 0 turns "
                        "micro-batching off (default 2)")
    p.add_argument("--max-batch", type=int, default=256, help="windows per model call at most")
    p.add_argument("--max-streams", type=int, default=200,
                   help="open streams per worker; more get 503 + Retry-After (default 200)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="upload size limit")
    p.add_argument("--max-upload-s", type=float, default=3600.0,
                   help="longest audio an upload may decode to (default 3600)")
    p.add_argument("--max-stream-s", type=float, default=3600.0,
                   help="longest a stream may run (default 3600)")
    p.add_argument("--idle-timeout-s", type=float, default=30.0,
                   help="close a stream that sends nothing this long (default 30)")
    p.add_argument("--max-pending-uploads", type=int, default=16,
                   help="uploads waiting per worker; more get 503 + Retry-After (default 16)")
    p.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="a web origin (e.g. https://app.example) whose pages may open "
                        "streams; the server's own page always may (repeatable)")
    p.add_argument("--ray-replicas", type=int, default=None, metavar="N",
                   help="run as a Ray Serve deployment with N replicas and Ray's request "
                        "batching instead of uvicorn workers (pip install 'kwspot[ray]')")
    p.add_argument("--ray-address", default=None,
                   help="Ray cluster to deploy to (default: $RAY_ADDRESS, else a local Ray)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> None:
    import os

    try:
        from kwspot.serving import ServeConfig, serve
        from kwspot.serving.app import create_app  # noqa: F401 - is FastAPI installed?
    except ImportError as exc:
        raise KwspotError(f"kwspot serve needs the optional extra ({exc.name} is missing): "
                          "pip install 'kwspot[serve]'") from None
    api_key = os.environ.get("KWSPOT_API_KEY") or None
    if args.api_key_file:
        try:
            api_key = Path(args.api_key_file).read_text().strip() or None
        except (OSError, UnicodeDecodeError) as exc:
            raise KwspotError(f"{args.api_key_file}: cannot read the API key ({exc})") from None
    config = ServeConfig(
        model=args.model, host=args.host, port=args.port, workers=args.workers,
        api_key=api_key, detector=detector_config(args), max_upload_mb=args.max_upload_mb,
        max_upload_s=args.max_upload_s, max_stream_s=args.max_stream_s,
        idle_timeout_s=args.idle_timeout_s, max_streams=args.max_streams,
        batch_wait_ms=args.batch_wait_ms, max_batch=args.max_batch,
        max_pending_uploads=args.max_pending_uploads, allowed_origins=tuple(args.allow_origin))
    if args.ray_replicas is None:
        serve(config)
        return
    if args.ray_replicas < 1:
        raise KwspotError(f"--ray-replicas must be at least 1, got {args.ray_replicas}")
    try:
        from kwspot.serving.ray_serve import run
    except ImportError as exc:
        raise KwspotError(f"--ray-replicas needs the optional extra ({exc.name} is missing): "
                          "pip install 'kwspot[ray]'") from None
    from kwspot.serving.server import check_model

    check_model(config)
    run(config, args.ray_replicas, blocking=True, address=args.ray_address)


def add_review_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("review", help="review and correct labels in the browser",
                       description="A local web app to review a data set: play each clip, "
                       "see its waveform, spectrogram and (with --model) the model's opinion, "
                       "judge it (1) Correct / (2) Incorrect, correct its label, comment, and "
                       "mark segments of long recordings. Judgements go to a SQLite database; "
                       "`kwspot review export DATA --db DB --out corrected.csv` writes the "
                       "corrected manifest. Needs pip install 'kwspot[serve]'.")
    p.add_argument("data", help="data set: label folder, Speech Commands, .csv or .jsonl")
    p.add_argument("--model", default=None, metavar="FILE.onnx|FILE.tflite",
                   help="exported model: its doubts order the queue and it suggests segments")
    p.add_argument("--db", default="review.sqlite", help="judgements (default review.sqlite)")
    p.add_argument("--annotator", default=None,
                   help="your name (default: the login name; ?annotator= in the URL wins)")
    p.add_argument("--reviews-per-clip", type=int, default=1, metavar="K",
                   help="how many annotators judge each clip (default 1)")
    p.add_argument("--order", choices=["model", "random", "data"], default="model",
                   help="queue order: model doubt first (default with --model), random, or "
                        "as the data set lists them")
    p.add_argument("--seed", type=int, default=0, help="seed of the random order")
    p.add_argument("--label-regex", default=None, help="label from file names, as for train")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    p.add_argument("--port", type=int, default=8010, help="port (default 8010)")
    p.set_defaults(func=cmd_review)


def add_review_export_parser(sub: argparse._SubParsersAction) -> None:
    # reached as `kwspot review export ...` (main() rewrites it); hidden from the command list
    p = sub.add_parser("review-export", prog="kwspot review export",
                       description="Write the data set with its reviewed labels as a CSV "
                       "manifest (path,label,split,speaker,review_status,reviews) that "
                       "`kwspot train --data` reads. Clips judged incorrect with no corrected "
                       "label are left out, and counted.")
    p.add_argument("data", help="the data set that was reviewed")
    p.add_argument("--db", default="review.sqlite", help="judgements (default review.sqlite)")
    p.add_argument("--out", required=True, help="the corrected manifest (.csv)")
    p.add_argument("--label-regex", default=None, help="label from file names, as for train")
    p.set_defaults(func=cmd_review_export)


def _review_store(db: str, must_exist: bool):
    from kwspot.review import ReviewStore

    if must_exist and not Path(db).is_file():
        raise KwspotError(f"{db}: review database not found")
    return ReviewStore(db)


def cmd_review(args: argparse.Namespace) -> None:
    import getpass

    try:
        import uvicorn

        from kwspot.review.app import create_review_app
    except ImportError as exc:
        raise KwspotError(f"kwspot review needs the optional extra ({exc.name} is missing): "
                          "pip install 'kwspot[serve]'") from None
    from kwspot.review import load_review_set
    from kwspot.serving.config import is_loopback

    if not is_loopback(args.host):
        raise KwspotError(f"kwspot review serves on loopback only, not {args.host}: it has no "
                          "log-in; put an authenticating proxy in front to share it")
    store = _review_store(args.db, must_exist=False)
    review = load_review_set(args.data, store, args.model, args.order, args.reviews_per_clip,
                             args.seed, args.label_regex,
                             progress=lambda text: print(text, file=sys.stderr))
    annotator = args.annotator or getpass.getuser()
    print(f"reviewing {len(review.clips)} clips ({review.order_name} order) into {args.db}: "
          f"http://{args.host}:{args.port}/?annotator={annotator}", file=sys.stderr)
    app = create_review_app(review, annotator,
                            args.data if Path(args.data).is_dir() else None)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


def cmd_review_export(args: argparse.Namespace) -> None:
    from kwspot.review import export_manifest
    from kwspot.review.clips import read_clips

    store = _review_store(args.db, must_exist=True)
    clips = read_clips(args.data, args.label_regex)
    stats = export_manifest(clips, store.judgements(), args.out)
    print(f"{args.out}: {stats['written']} clips ({stats['confirmed']} confirmed, "
          f"{stats['corrected']} corrected, {stats['disputed']} disputed, "
          f"{stats['unreviewed']} unreviewed); {stats['left_out']} judged incorrect with no "
          "corrected label were left out")


def add_bench_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="params, FLOPs and measured latency (PyTorch, ONNX, TFLite)",
                       description="Measure single-example latency on --threads threads "
                       "(median and p90 over --runs runs after --warmup), for PyTorch, ONNX "
                       "Runtime and, with kwspot[tflite], TFLite, with the feature front end "
                       "included and excluded, float and int8, side by side in one run. "
                       "Untrained weights time the same as trained ones.")
    p.add_argument("--model", action="append", default=None,
                   help="architecture(s) to measure; repeat the flag (default tc-resnet8)")
    p.add_argument("--checkpoint", default=None, help="measure this checkpoint instead")
    p.add_argument("--runs", type=int, default=1000, help="timed runs (default 1000)")
    p.add_argument("--warmup", type=int, default=100, help="untimed runs first (default 100)")
    p.add_argument("--threads", type=int, default=1, help="threads (default 1)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write results here")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> None:
    import json

    from rich.console import Console
    from rich.progress import track
    from rich.table import Table

    from kwspot.bench import benchmark
    from kwspot.checkpoint import load_classifier
    from kwspot.classifier import KeywordClassifier
    from kwspot.data import SILENCE, SPEECH_COMMANDS_KEYWORDS, UNKNOWN
    from kwspot.features import FeatureConfig

    if args.runs < 1:
        raise KwspotError("--runs must be at least 1")
    if args.checkpoint:
        models = [load_classifier(args.checkpoint)[0]]
    else:
        labels = [SILENCE, UNKNOWN, *SPEECH_COMMANDS_KEYWORDS]
        models = [KeywordClassifier(name, labels, FeatureConfig())
                  for name in (args.model or ["tc-resnet8"])]
    results = [benchmark(m, args.runs, args.warmup, args.threads)
               for m in track(models, description="benchmarking", console=Console(stderr=True))]
    table = Table(title=f"latency per 1 s clip, batch 1, {args.threads} thread(s), "
                        f"{args.runs} runs")
    columns = ("model", "params", "FLOPs", "engine", "input", "median ms", "p90 ms",
               "speed vs pytorch")
    for col in columns:
        table.add_column(col, justify="left" if col in ("model", "engine", "input") else "right")
    for r in results:
        pytorch = {t["inputs"]: t["median_ms"] for t in r["timings"] if t["engine"] == "pytorch"}
        for t in r["timings"]:
            table.add_row(r["model"], f"{r['params'] / 1e3:.1f}K", f"{r['flops'] / 1e6:.2f}M",
                          t["engine"], "audio+features" if t["inputs"] == "audio" else "features",
                          f"{t['median_ms']:.3f}", f"{t['p90_ms']:.3f}",
                          f"{pytorch[t['inputs']] / t['median_ms']:.2f}x")
    console = Console()
    if not console.is_terminal:
        console = Console(width=120)  # a pipe or file gets the whole table, not "tc-res…"
    console.print(table)
    if args.json:
        from kwspot.fileio import atomic_write_text

        atomic_write_text(args.json, json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")


def add_synth_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="synthesize a folder-per-label keyword dataset (offline TTS)",
                       description="Speak each word with espeak-ng (shipped by pip, offline) in "
                       "many voices, variants, pitches and speeds, with noise, into "
                       "<out>/<word>/<word>_NNNN.wav (1 s, 16 kHz). The same --seed gives the "
                       "same files.")
    p.add_argument("--words", type=_words, required=True, metavar="W1,W2,..",
                   help="words or short phrases, comma separated")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--clips-per-word", type=int, default=100, help="clips per word (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.set_defaults(func=cmd_synth)


def cmd_synth(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.progress import Progress

    from kwspot.datasets.synth import synthesize_dataset

    if args.clips_per_word < 1:
        raise KwspotError("--clips-per-word must be at least 1")
    if not args.words:
        raise KwspotError("--words needs at least one word")
    total = len(args.words) * args.clips_per_word
    with Progress(console=Console(stderr=True)) as bar:
        task = bar.add_task("synthesize", total=total)
        try:
            counts = synthesize_dataset(
                list(args.words), Path(args.out), args.clips_per_word, args.seed,
                progress=lambda done, _total: bar.update(task, completed=done))
        except ValueError as exc:
            raise KwspotError(str(exc)) from None
    print(f"wrote {sum(counts.values())} clips of {len(counts)} words to {args.out}")


def add_negatives_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("negatives", help="1 s clips of non-keyword speech for training",
                       description="Write 1 s clips of speech that holds no keyword, from one "
                       "split only: FSDD digits of that split's speakers, and crops of TTS "
                       "sentences spoken by that split's eSpeak voices. Train with "
                       "`--negatives DIR`.")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--split", default="train", choices=("train", "validation", "test"),
                   help="which speakers and voices (default train)")
    p.add_argument("--keywords", type=_words, default=None, metavar="W1,W2,..",
                   help="words the sentences must never contain (default: the 10 Speech "
                        "Commands keywords)")
    p.add_argument("--fsdd", default=None, metavar="DIR", help="FSDD recordings folder")
    p.add_argument("--sentences", type=int, default=1000, help="TTS sentences (default 1000)")
    p.add_argument("--crops-per-sentence", type=int, default=2,
                   help="1 s crops cut from each sentence (default 2)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.set_defaults(func=cmd_negatives)


def cmd_negatives(args: argparse.Namespace) -> None:
    from kwspot.data import SPEECH_COMMANDS_KEYWORDS
    from kwspot.datasets.negatives import write_negative_clips

    if args.sentences < 0 or args.crops_per_sentence < 1:
        raise KwspotError("--sentences must be >= 0 and --crops-per-sentence >= 1")
    counts = write_negative_clips(args.out, args.split,
                                  args.keywords or SPEECH_COMMANDS_KEYWORDS, args.fsdd,
                                  args.sentences, args.crops_per_sentence, args.seed)
    print(f"wrote {counts['fsdd']} FSDD and {counts['tts']} TTS clips ({args.split}) to "
          f"{args.out}")


def add_streams_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("streams", help="long test recordings with ground truth, from one split",
                       description="Build keywords.wav (every keyword clip of the split at a "
                       "random time in a bed of non-keyword speech, noise and silence) and "
                       "negatives.wav (only non-keyword speech, at least --negatives-minutes, "
                       "varied in gain, speed and noise), each with a .json ground truth. Only "
                       "the chosen split goes in. Non-keyword speech: the split's other words, "
                       "FSDD digits of the split's speakers, TTS sentences in the split's "
                       "voices. The noise bed is generated, not taken from any dataset.")
    p.add_argument("--data", required=True, metavar="DIR",
                   help="Speech Commands folder with validation_list.txt/testing_list.txt")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--split", default="test", choices=("train", "validation", "test"),
                   help="which split (default test)")
    p.add_argument("--keywords", type=_words, default=None, metavar="W1,W2,..",
                   help="keywords (default: the 10 Speech Commands words)")
    p.add_argument("--fsdd", default=None, metavar="DIR", help="FSDD recordings folder")
    p.add_argument("--sentences", type=int, default=400,
                   help="TTS sentences of non-keyword speech (default 400)")
    p.add_argument("--negatives-minutes", type=float, default=60.0,
                   help="length of negatives.wav (default 60)")
    p.add_argument("--snr-db", type=_floats, default=(5.0, 25.0), metavar="LO,HI",
                   help="speech-to-noise ratio range (default 5,25)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.set_defaults(func=cmd_streams)


def cmd_streams(args: argparse.Namespace) -> None:
    from kwspot.datasets.streams import StreamConfig, build_streams

    if len(args.snr_db) != 2 or args.snr_db[0] > args.snr_db[1]:
        raise KwspotError("--snr-db needs LO,HI with LO <= HI")
    if args.negatives_minutes <= 0 or args.sentences < 0:
        raise KwspotError("--negatives-minutes must be > 0 and --sentences >= 0")
    cfg = StreamConfig(split=args.split, keywords=args.keywords or (), fsdd=args.fsdd,
                       sentences=args.sentences, negatives_minutes=args.negatives_minutes,
                       snr_db=tuple(args.snr_db), seed=args.seed)
    summary = build_streams(args.data, args.out, cfg)
    print(f"wrote {args.out}/keywords.wav ({summary['keywords']} keywords) and "
          f"{args.out}/negatives.wav ({summary['negative_items']} non-keyword items), "
          "each with a .json ground truth")


def add_stream_args(p: argparse.ArgumentParser, model_help: str, streams_help: str,
                    tolerance: bool = True) -> None:
    """MODEL STREAM... (and --tolerance-s): what eval-stream, calibrate and mine share."""
    p.add_argument("model", help=model_help)
    p.add_argument("streams", nargs="+", help=streams_help)
    if tolerance:
        p.add_argument("--tolerance-s", type=float, default=1.0,
                       help="how long after a keyword ends an event still counts "
                            "(default 1.0)")


def add_eval_stream_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-stream", help="false rejects vs false alarms per hour on streams",
                       description="Run the detector (the code `kwspot detect` runs) over "
                       "streams made by `kwspot streams`, sweep the threshold, and report per "
                       "keyword and overall: FRR against FA/h, the DET curve, FRR at 0.5, 1 and "
                       "5 FA/h, precision and recall against the threshold, latency, and the "
                       "figures at the model's own thresholds. A hit is the right keyword "
                       "firing between the keyword's start and --tolerance-s after its end; "
                       "anything else is a false alarm. Writes report.json, report.html, "
                       "det.png and precision_recall.png.")
    add_stream_args(p, "exported .onnx, or 'shipped' for the packaged model",
                    "stream .wav files with .json truth beside them")
    p.add_argument("--out", default="reports/eval-stream", metavar="DIR",
                   help="report folder (default reports/eval-stream)")
    p.add_argument("--compare", action="append", default=[], metavar="REPORT.json",
                   help="draw another report's overall DET curve too; repeatable")
    add_detector_args(p, with_model=False)
    p.set_defaults(func=cmd_eval_stream)


def cmd_eval_stream(args: argparse.Namespace) -> None:
    import json

    from kwspot.evaluate.report import write_stream_report
    from kwspot.evaluate.streams import evaluate_streams

    model = args.model
    others = {}
    for path in args.compare:
        try:
            others[Path(path).parent.name] = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise KwspotError(f"{path}: cannot read report ({exc})") from None
    report = evaluate_streams(model, args.streams, detector_config(args),
                              list(args.keywords) if args.keywords else None, args.tolerance_s)
    page = write_stream_report(report, args.out, others)
    ops = report["operating_points"]["overall"]
    print(f"{report['model']} on {report['hours']:.2f} h of streams "
          f"({sum(s['keywords'] for s in report['streams'])} keywords)")
    for target, point in ops.items():
        text = (f"FRR {point['frr']:.1%} at {point['fa_per_hour']:.2f} FA/h (threshold "
                f"{point['threshold']:.5g})") if point else "not reached by any threshold"
        print(f"  at <= {target} FA/h: {text}")
    d = report["default_thresholds"]
    print(f"  at the model's thresholds: FRR {d['frr']:.1%}, {d['fa_per_hour']:.2f} FA/h, "
          f"precision {d['precision']:.1%}, latency median {d['latency_s']['median']}")
    print(f"report: {page}")


def add_calibrate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="per-keyword thresholds for a false-alarm budget",
                       description="Choose per-keyword thresholds on VALIDATION streams so that "
                       "the detector fires at most --target-fa-per-hour false alarms per hour "
                       "(split evenly over the keywords), and write them into the model card; "
                       "`kwspot detect` then uses them by default. Never calibrate on the "
                       "streams you report on.")
    add_stream_args(p, "exported .onnx (its .json card is updated)",
                    "validation stream .wav files with .json truth")
    p.add_argument("--target-fa-per-hour", type=float, required=True, metavar="X",
                   help="false alarms per hour allowed, all keywords together")
    p.add_argument("--dry-run", action="store_true", help="print, do not write the card")
    add_detector_args(p, with_model=False)
    p.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args: argparse.Namespace) -> None:
    from kwspot.evaluate.calibrate import calibrate, write_thresholds

    if not str(args.model).endswith(".onnx"):
        raise KwspotError(f"{args.model}: calibrate needs an exported .onnx model")
    result = calibrate(args.model, args.streams, args.target_fa_per_hour,
                       detector_config(args), list(args.keywords) if args.keywords else None,
                       args.tolerance_s)
    c = result["calibration"]
    for keyword, m in c["per_keyword"].items():
        print(f"{keyword:>10}  threshold {m['threshold']:.6g}  FRR {m['frr']:.1%}  "
              f"{m['fa_per_hour']:.2f} FA/h")
    print(f"all keywords on {c['hours']:.2f} h of validation streams: FRR "
          f"{c['all_keywords']['frr']:.1%}, {c['all_keywords']['fa_per_hour']:.2f} FA/h")
    if not args.dry_run:
        print(f"wrote thresholds into {write_thresholds(args.model, result)}")


def add_mine_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mine", help="hard negatives: windows where a model fires on no keyword",
                       description="Run the model over TRAINING streams (`kwspot streams --split "
                       "train`) and save every 1 s window where it fires but no keyword was "
                       "said (a few shifted copies each) as WAV files under --out/<keyword "
                       "fired>/. Train again with `--negatives DIR` (fine-tune with --init).")
    add_stream_args(p, "exported .onnx, or 'shipped'",
                    "training stream .wav files with .json truth", tolerance=False)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="fire at this score while mining (default 0.5: catch near misses too)")
    p.set_defaults(func=cmd_mine)


def cmd_mine(args: argparse.Namespace) -> None:
    from kwspot.evaluate.mining import mine_hard_negatives

    counts = mine_hard_negatives(args.model, args.streams, args.out, args.threshold)
    print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    print(f"wrote {counts.get('clips', 0)} clips to {args.out}")


def add_demo_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the whole lap on built-in synthetic data, no downloads",
                       description="Synthesize a small keyword set, train TC-ResNet8 briefly, "
                       "evaluate, export to ONNX, then detect keywords in a synthesized "
                       "sentence. Needs no external data; a few minutes on 2 cores.")
    p.add_argument("--out", default="runs/demo", metavar="DIR",
                   help="where everything goes (default runs/demo; replaced if it exists)")
    p.add_argument("--steps", type=int, default=1500, help="training steps (default 1500)")
    p.add_argument("--clips-per-word", type=int, default=150,
                   help="synthesized clips per keyword (default 150)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> None:
    from kwspot.demo import DemoConfig, run_demo

    run_demo(DemoConfig(out=Path(args.out), steps=args.steps,
                        clips_per_word=args.clips_per_word, seed=args.seed))


def add_wakeword_parser(sub: argparse._SubParsersAction) -> None:
    from kwspot.wakeword.cli import add_wakeword_parser as add

    add(sub)


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_prepare_parser, add_train_parser, add_table_parser, add_eval_parser, add_export_parser,
    add_verify_export_parser, add_detect_parser, add_listen_parser, add_serve_parser,
    add_bench_parser,
    add_synth_parser, add_negatives_parser, add_streams_parser, add_eval_stream_parser,
    add_calibrate_parser, add_mine_parser, add_review_parser, add_review_export_parser,
    add_demo_parser, add_wakeword_parser,
]


def _version() -> str:
    from kwspot import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kwspot",
        description="Keyword spotting from research to production: train, evaluate, export, "
                    "benchmark and run TC-ResNet keyword spotters.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"kwspot {_version()}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings (e.g. a truncated WAV) as one 'kwspot: warning:' line, without source echo."""
    print(f"kwspot: warning: {message}", file=file or sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    import warnings

    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if command is not None and argv[command : command + 2] == ["review", "export"]:
        argv[command : command + 2] = ["review-export"]
    args = parser.parse_args(argv)
    if not args.debug:
        warnings.showwarning = _one_line_warning
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
    except BrokenPipeError:  # `kwspot detect ... | head -1`: the reader left; not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a full disk, a read-only or missing folder, no permission
        if args.debug:
            raise
        print(f"kwspot: error: {os_error_line(exc)}", file=sys.stderr)
        return 1
    return 0


def os_error_line(exc: OSError) -> str:
    """'PATH: reason' in one line, e.g. 'runs/x/best.pt: No space left on device'."""
    reason = exc.strerror or str(exc).splitlines()[0]
    return f"{exc.filename}: {reason}" if exc.filename else reason


if __name__ == "__main__":
    sys.exit(main())
