"""Arguments shared by several subcommands: the data recipe, detector settings, streams."""

from __future__ import annotations

import argparse

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


def _given(args: argparse.Namespace, names: dict[str, str]) -> dict:
    """The options the user set: {config field: value} for the non-None ones."""
    return {field: getattr(args, arg) for arg, field in names.items()
            if getattr(args, arg) is not None}


def add_detector_args(p: argparse.ArgumentParser, with_model: bool = True) -> None:
    if with_model:
        p.add_argument("--model", default=None, metavar="FILE.onnx|FILE.tflite",
                       help="exported model (.onnx, or .tflite with kwspot[tflite]) and its "
                            "card, or 'shipped-embedding' for the shipped speech-embedding "
                            "model (default: the shipped TC-ResNet8 trained on Speech Commands)")
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


def add_stream_args(p: argparse.ArgumentParser, model_help: str, streams_help: str,
                    tolerance: bool = True) -> None:
    """MODEL STREAM... (and --tolerance-s): what eval-stream, calibrate and mine share."""
    p.add_argument("model", help=model_help)
    p.add_argument("streams", nargs="+", help=streams_help)
    if tolerance:
        p.add_argument("--tolerance-s", type=float, default=1.0,
                       help="how long after a keyword ends an event still counts "
                            "(default 1.0)")
