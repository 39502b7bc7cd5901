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
    return tuple(w.strip() for w in text.split(",") if w.strip())


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(","))


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def add_data_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", required=required, metavar="PATH",
                   help="Speech Commands folder (with validation_list.txt/testing_list.txt), "
                        "a folder-per-label dataset, a flat folder (with --label-regex), a "
                        "CSV manifest (path,label[,split,speaker]) or a run's manifest.jsonl")
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
        seed=getattr(args, "seed", None) or 0,
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
    f.add_argument("--f-max", type=float, default=4000.0,
                   help="highest mel edge, Hz (default 4000)")
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
    a.add_argument("--noise-rms", type=float, default=None, metavar="RMS",
                   help="rescale every noise recording to this RMS before mixing (default: "
                        "as recorded, the paper's recipe); e.g. 0.1 makes silence cover loud "
                        "rooms")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> None:
    from kwspot.augment import AugmentConfig
    from kwspot.config import OptimConfig, TrainConfig
    from kwspot.features import FeatureConfig
    from kwspot.train import train

    if args.resume:
        if args.data:
            print(f"--resume continues with the settings saved in {args.run_dir}/config.json; "
                  "other options are ignored", file=sys.stderr)
        summary = train(None, args.run_dir, resume=True, quiet=args.quiet)
    else:
        if not args.data:
            raise KwspotError("train needs --data PATH (or --resume --run-dir DIR)")
        n_rates = len(args.lr_values)
        bounds = args.lr_boundaries if args.lr_boundaries is not None else tuple(
            round(args.steps * (i + 1) / n_rates) for i in range(n_rates - 1))
        optim = OptimConfig(steps=args.steps, batch_size=args.batch_size,
                            lr_values=args.lr_values, lr_boundaries=bounds,
                            momentum=args.momentum, weight_decay=args.weight_decay)
        cfg = TrainConfig(
            data=data_config(args), model=args.model, dropout=args.dropout,
            features=FeatureConfig(kind=args.features, n_mfcc=args.n_mfcc, n_mels=args.n_mels,
                                   window_ms=args.window_ms, hop_ms=args.hop_ms,
                                   f_min=args.f_min, f_max=args.f_max, clip_ms=args.clip_ms),
            augment=AugmentConfig(background_prob=args.background_prob,
                                  background_volume=args.background_volume,
                                  time_shift_ms=args.time_shift_ms,
                                  noise_rms=args.noise_rms),
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


def add_eval_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="accuracy, per-class precision/recall and confusion matrix",
                       description="Evaluate a checkpoint (.pt or run dir) or an exported .onnx "
                       "on a dataset split; writes report.json, confusion.txt and confusion.png.")
    p.add_argument("model", help="checkpoint file, run directory (uses best.pt) or .onnx")
    add_data_args(p)
    p.add_argument("--split", default="auto",
                   choices=("auto", "train", "validation", "test", "all"),
                   help="which clips (default auto: 'test' for Speech Commands and CSV "
                        "manifests, 'all' for a plain label folder such as a prepared test set)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="report folder (default: <run dir>/eval-<data name>)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed drawing the recipe's _unknown_/_silence_ test clips (default: the "
                        "seed the model was trained with, so its own test figure repeats)")
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    from kwspot.checkpoint import run_dir_of
    from kwspot.datasets.speech_commands import is_speech_commands
    from kwspot.evaluate import run_evaluation

    data = Path(args.data)
    split = args.split
    if split == "auto":
        split = "test" if (data.suffix == ".csv" or is_speech_commands(data)) else "all"
    model = Path(args.model)
    out = Path(args.out) if args.out else run_dir_of(model) / f"eval-{data.stem or data.name}"
    report, bad, mapping = run_evaluation(model, data_config(args), split, out, args.seed)
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
    p = sub.add_parser("export", help="export to ONNX (audio in, posteriors out) + model card",
                       description="Export a checkpoint to ONNX with the feature front end "
                       "inside the graph, plus a JSON model card. Fails if ONNX Runtime and "
                       "PyTorch disagree by more than --tolerance on the check clips.")
    p.add_argument("checkpoint", help="checkpoint file or run directory (uses best.pt)")
    p.add_argument("--out", default=None, metavar="FILE.onnx",
                   help="output model (default <run dir>/export/<model>.onnx)")
    p.add_argument("--check-data", default=None, metavar="PATH",
                   help="folder of audio clips for the parity check (default: synthetic "
                        "speech-like signals)")
    p.add_argument("--check-clips", type=int, default=32, help="clips for the parity check")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest allowed |onnx - torch| posterior difference (default 1e-4)")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> None:
    from kwspot.checkpoint import load_classifier, run_dir_of
    from kwspot.export import card_path, export_onnx, parity_clips

    model, record = load_classifier(args.checkpoint)
    out = Path(args.out) if args.out else (
        run_dir_of(args.checkpoint) / "export" / f"{model.model_name}.onnx")
    audio = parity_clips(args.check_data, args.check_clips, model.features.clip_samples)
    card = export_onnx(model, out, audio, record, tolerance=args.tolerance)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB) and {card_path(out)}")
    print(f"parity: max |onnx - torch| = {card['parity']['max_abs_diff']:.2e} "
          f"on {card['parity']['clips']} clips")


def add_detect_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect", help="find keywords in recordings of any length",
                       description="Slide the exported model over each file and print every "
                       "detected keyword with its time and score. Posteriors are averaged over "
                       "--smooth-ms, a keyword fires above --threshold, then nothing fires for "
                       "--refractory-ms. Uses the shipped TC-ResNet8 unless --model is given.")
    p.add_argument("files", nargs="+", help="audio files (WAV/FLAC/OGG, any rate, mono/stereo)")
    p.add_argument("--model", default=None, metavar="FILE.onnx",
                   help="exported model with its .json card (default: the shipped TC-ResNet8 "
                        "trained on Speech Commands)")
    p.add_argument("--keywords", type=_words, default=None, metavar="W1,W2,..",
                   help="only report these (default: every class but _silence_/_unknown_)")
    p.add_argument("--threshold", type=float, default=0.8,
                   help="smoothed posterior needed to fire (default 0.8)")
    p.add_argument("--hop-ms", type=float, default=100.0, help="window hop (default 100)")
    p.add_argument("--smooth-ms", type=float, default=300.0,
                   help="posterior smoothing span (default 300)")
    p.add_argument("--refractory-ms", type=float, default=1000.0,
                   help="quiet time after a detection (default 1000)")
    p.add_argument("--json", action="store_true", help="print one JSON object per detection")
    p.set_defaults(func=cmd_detect)


def cmd_detect(args: argparse.Namespace) -> None:
    import json

    from kwspot.audio import load_audio
    from kwspot.detect import DetectorConfig, detect_audio
    from kwspot.errors import AudioError
    from kwspot.runtime import OnnxKeywordModel

    model = OnnxKeywordModel(args.model)
    cfg = DetectorConfig(threshold=args.threshold, hop_ms=args.hop_ms,
                         smooth_ms=args.smooth_ms, refractory_ms=args.refractory_ms)
    failures = 0
    for file in args.files:
        try:
            audio = load_audio(file, model.sample_rate)
        except AudioError as exc:
            print(f"kwspot: error: {exc}", file=sys.stderr)
            failures += 1
            continue
        events = detect_audio(audio, model, cfg, list(args.keywords) if args.keywords else None)
        for e in events:
            if args.json:
                print(json.dumps({"file": file, "keyword": e.keyword,
                                  "time_s": round(e.time_s, 2), "score": round(e.score, 3)}))
            else:
                print(f"{file}\t{e.time_s:7.2f}s\t{e.keyword}\t{e.score:.3f}")
        if not events and not args.json:
            print(f"{file}\t(no keyword; {len(audio) / model.sample_rate:.1f} s of audio)")
    if failures:
        raise KwspotError(f"{failures} of {len(args.files)} files could not be read")


def add_bench_parser(sub: argparse._SubParsersAction) -> None:
    from kwspot.models import MODELS

    p = sub.add_parser("bench", help="params, FLOPs and measured latency (PyTorch and ONNX)",
                       description="Measure single-example latency on --threads threads "
                       "(median and p90 over --runs runs after --warmup), for PyTorch and ONNX "
                       "Runtime, with the feature front end included and excluded. Untrained "
                       "weights time the same as trained ones.")
    p.add_argument("--model", action="append", default=None, choices=sorted(MODELS),
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
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
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


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_train_parser, add_eval_parser, add_export_parser, add_detect_parser, add_bench_parser,
    add_synth_parser, add_demo_parser,
]


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
