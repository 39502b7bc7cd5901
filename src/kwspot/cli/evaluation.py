"""``kwspot eval``, ``eval-stream``, ``calibrate``, ``mine``, ``bench``: measuring models."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kwspot.cli.common import (
    add_data_args,
    add_detector_args,
    add_stream_args,
    data_config,
    detector_config,
)
from kwspot.errors import KwspotError


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
    from kwspot.runtime.model import is_exported, resolve_export

    data = Path(args.data)
    split = args.split
    if split == "auto":
        split = default_eval_split(data_config(args))
        if split == "all":
            print(f"scoring every clip of {data} (a label folder has no split lists; "
                  "--split test scores its held-out speakers only)", file=sys.stderr)
    model = resolve_export(args.model)
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
    add_stream_args(p, "exported .onnx, or 'shipped' / 'shipped-embedding' for a packaged model",
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
                f"{point['threshold']:.7g})") if point else "not reached by any threshold"
        print(f"  at <= {target} FA/h: {text}")
    d = report["default_thresholds"]
    latency = d["latency_s"]["median"]
    latency = "n/a (no hits)" if latency is None else f"{latency:.3f} s"
    print(f"  at the model's thresholds: FRR {d['frr']:.1%}, {d['fa_per_hour']:.2f} FA/h, "
          f"precision {d['precision']:.1%}, latency median {latency}")
    print(f"report: {page}")


def add_calibrate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="per-keyword thresholds for a false-alarm budget",
                       description="Choose per-keyword thresholds on VALIDATION streams so that "
                       "the detector fires at most --target-fa-per-hour false alarms per hour "
                       "(split evenly over the keywords, or with --shared one threshold for "
                       "all), and write them into the model card; "
                       "`kwspot detect` then uses them by default. Streams whose truth says "
                       "they were built from the training or test split are refused: never "
                       "calibrate on the streams you report on.")
    add_stream_args(p, "exported .onnx (its .json card is updated)",
                    "validation stream .wav files with .json truth")
    p.add_argument("--target-fa-per-hour", type=float, required=True, metavar="X",
                   help="false alarms per hour allowed, all keywords together")
    p.add_argument("--shared", action="store_true",
                   help="one threshold for every keyword, the whole budget for all of them "
                        "together (default: the budget split evenly, a threshold each)")
    p.add_argument("--dry-run", action="store_true", help="print, do not write the card")
    add_detector_args(p, with_model=False)
    p.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args: argparse.Namespace) -> None:
    from kwspot.evaluate.calibrate import calibrate, write_thresholds
    from kwspot.runtime.model import SHIPPED_NAMES

    packaged = str(args.model) in SHIPPED_NAMES
    if packaged and not args.dry_run:
        raise KwspotError(f"{args.model}: calibrate writes into the model's card; copy the "
                          "model out of the package first (or use --dry-run)")
    if not packaged and not str(args.model).endswith(".onnx"):
        raise KwspotError(f"{args.model}: calibrate needs an exported .onnx model")
    result = calibrate(args.model, args.streams, args.target_fa_per_hour,
                       detector_config(args), list(args.keywords) if args.keywords else None,
                       args.tolerance_s, shared=args.shared)
    c = result["calibration"]
    for keyword, m in c["per_keyword"].items():
        print(f"{keyword:>10}  threshold {m['threshold']:.7g}  FRR {m['frr']:.1%}  "
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
    add_stream_args(p, "exported .onnx, or 'shipped' / 'shipped-embedding'",
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
