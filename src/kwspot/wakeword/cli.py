"""``kwspot wakeword PHRASE``: the command-line face of ``kwspot.wakeword.flow.wakeword``."""

from __future__ import annotations

import argparse
import json
import sys


def add_wakeword_parser(sub: argparse._SubParsersAction) -> None:
    from kwspot.datasets.voices import SYNTHESIZERS

    p = sub.add_parser(
        "wakeword", help="a detector for your own phrase from typed text (no recordings needed)",
        description="Typed text -> an exported, calibrated wake-word detector: eSpeak NG "
                    "positives and sound-alike negatives, your negative speech and noise, "
                    "augmentation, a small head on a frozen pretrained speech embedding, a "
                    "threshold for --target-fa-per-hour on held-out streams, one ONNX model. "
                    "Needs kwspot[wakeword]. Resumes a killed run from <out>/work.")
    p.add_argument("phrase", help='the wake phrase, e.g. "hey kwspot"')
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default runs/wakeword-<phrase>)")
    p.add_argument("--negatives", nargs="+", default=[], metavar="DIR",
                   help="folders of real speech without the phrase (files named after one "
                        "of its words are skipped); split by speaker for validation")
    p.add_argument("--noise", nargs="+", default=[], metavar="DIR",
                   help="folders of background noise to mix in (default: coloured noise)")
    p.add_argument("--recordings", nargs="+", default=[], metavar="DIR",
                   help="folders of real recordings of the phrase, if you have some: each "
                        "gives 20 augmented positives; split by speaker (Speech Commands / "
                        "FSDD names, else by file) for validation and calibration")
    p.add_argument("--target-fa-per-hour", type=float, default=1.0,
                   help="false alarms per hour the threshold is calibrated for (default 1)")
    p.add_argument("--positives", type=int, default=2000,
                   help="synthesized positive clips (default 2000)")
    p.add_argument("--sentences", type=int, default=900,
                   help="synthesized negative sentences (default 900)")
    p.add_argument("--calibration-minutes", type=float, default=60.0,
                   help="length of the held-out negatives stream (default 60)")
    p.add_argument("--backbone", default="embedding", metavar="NAME",
                   help="embedding (default): a small head on the frozen pretrained speech "
                        "embedding; or a kwspot model such as tc-resnet8, trained from scratch "
                        "on kwspot's MFCCs of the same windows (measured weaker on real "
                        "voices: docs/results.md)")
    p.add_argument("--epochs", type=int, default=15, help="head training epochs (default 15)")
    p.add_argument("--seed", type=int, default=0, help="data and training seed (default 0)")
    p.add_argument("--heads", type=int, default=1,
                   help="heads averaged, seeds --seed on (default 1; embedding backbone only; "
                        "a rerun with another count reuses the embedded windows)")
    for synth in SYNTHESIZERS:
        p.add_argument(f"--{synth.name}-share", type=float, default=synth.default_share,
                       metavar="SHARE", help=synth.help)
    p.add_argument("--force", action="store_true", help="start over instead of resuming")
    p.set_defaults(func=cmd_wakeword)


def cmd_wakeword(args: argparse.Namespace) -> None:
    from kwspot.datasets.voices import SYNTHESIZERS
    from kwspot.errors import KwspotError
    from kwspot.wakeword.data import DataConfig
    from kwspot.wakeword.flow import WakewordConfig, check_phrase, slug, wakeword
    from kwspot.wakeword.train import HeadConfig

    for name in ("positives", "sentences", "epochs"):
        if getattr(args, name) < 1:
            raise KwspotError(f"--{name} must be at least 1")
    shares = {f"{synth.name}_share": getattr(args, f"{synth.name}_share")
              for synth in SYNTHESIZERS}
    for name, value in shares.items():
        if not 0 <= value <= 1:
            raise KwspotError(f"--{name.replace('_', '-')} must be in [0, 1], got {value}")
    phrase = check_phrase(args.phrase)
    out = args.out or f"runs/wakeword-{slug(phrase)}"
    cfg = WakewordConfig(
        phrase=phrase, out=out, negatives=tuple(args.negatives), noise=tuple(args.noise),
        recordings=tuple(args.recordings),
        target_fa_per_hour=args.target_fa_per_hour,
        calibration_minutes=args.calibration_minutes,
        data=DataConfig(phrase, positives=args.positives, sentences=args.sentences,
                        seed=args.seed, **shares),
        head=HeadConfig(epochs=args.epochs, seed=args.seed), backbone=args.backbone,
        heads=args.heads)
    summary = wakeword(cfg, log=lambda line: print(line, file=sys.stderr, flush=True),
                       force=args.force)
    cal = summary["calibration"]
    print(json.dumps(summary, indent=1))
    print(f"{summary['model']}: threshold {summary['threshold']:.3f}; on {cal['hours']:.2f} h of "
          f"{cal['measured_on']}: {cal['fa_per_hour']:.2f} false alarms/h, false rejects "
          f"{100 * cal['frr']:.1f} %. " + ("" if (summary["recordings"] or {}).get("validation")
                                         else "Real voices were not measured: ")
          + "see docs/results.md.", file=sys.stderr)


def add_train_embedding_parser(sub: argparse._SubParsersAction) -> None:
    import dataclasses
    from types import SimpleNamespace

    from kwspot.cli.common import add_data_args
    from kwspot.wakeword.keywords_config import EmbeddingTrainConfig

    d = SimpleNamespace(**{f.name: f.default for f in dataclasses.fields(EmbeddingTrainConfig)})
    p = sub.add_parser(
        "train-embedding", help="a keyword classifier for your data on the frozen pretrained "
                                "speech embedding (the shipped-embedding recipe)",
        description="Train a small head on the frozen pretrained speech embedding for the "
                    "classes of --data, on 1.98 s stream-like windows (each clip among other "
                    "non-keyword speech, augmented), every negative clip used and _unknown_ "
                    "weighted up, optionally with rounds of hard negatives mined from streams "
                    "of training audio; export one ONNX model (audio in, embedding inside) "
                    "and its card. On Speech Commands it beats TC-ResNet8 on streams at ~20x "
                    "the CPU (docs/results.md). Caches go to <out>/work, so a killed run "
                    "resumes. Needs kwspot[wakeword].")
    add_data_args(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--name", default=d.name, help=f"the export's name (default {d.name})")
    p.add_argument("--work", default=None, metavar="DIR",
                   help="caches: embedded windows, mined windows, stream embeddings "
                        "(default <out>/work); share it between runs on the same data")
    p.add_argument("--keyword-copies", type=int, default=d.keyword_copies,
                   help=f"augmented windows per keyword clip (default {d.keyword_copies})")
    p.add_argument("--unknown-copies", type=int, default=d.unknown_copies,
                   help=f"... per _unknown_ clip (default {d.unknown_copies})")
    p.add_argument("--silence-copies", type=int, default=d.silence_copies,
                   help=f"... per _silence_ clip (default {d.silence_copies})")
    p.add_argument("--context", type=float, default=d.context,
                   help=f"share of windows with other speech around the clip "
                        f"(default {d.context})")
    p.add_argument("--unknown-weight", type=float, default=d.unknown_weight,
                   help=f"times the balanced loss weight of _unknown_ (default "
                        f"{d.unknown_weight:g}); higher trades recall for fewer false alarms")
    p.add_argument("--epochs", type=int, default=d.epochs,
                   help=f"head training epochs; the best by validation loss is kept "
                        f"(default {d.epochs})")
    p.add_argument("--seed", type=int, default=d.seed, help="training seed (default 0; the "
                   "windows stay the same across seeds)")
    p.add_argument("--heads", type=int, default=d.heads,
                   help="the model averages this many heads, seeds --seed, --seed + 1, ... "
                        "(default 1); each adds little CPU, the embedding is shared")
    m = p.add_argument_group("hard negatives")
    m.add_argument("--mine-streams", nargs="+", default=[], metavar="STREAM",
                   help="streams of training audio (`kwspot streams --split train`) whose "
                        "false alarms become _unknown_ windows")
    m.add_argument("--mine-rounds", type=int, default=d.mine_rounds,
                   help="rounds of mining, each with a model trained on the rounds before "
                        f"(default {d.mine_rounds})")
    m.add_argument("--mine-models", "--mine-model", dest="mine_models", nargs="+", default=[],
                   metavar="FILE.onnx",
                   help="exports (of this command) whose false alarms are mined as the "
                        "first rounds instead of training them")
    m.add_argument("--mine-threshold", type=float, default=d.mine_threshold,
                   help=f"smoothed score that counts as a false alarm (default "
                        f"{d.mine_threshold})")
    m.add_argument("--mine-limit", type=int, default=d.mine_limit,
                   help=f"mined windows per round at most (default {d.mine_limit})")
    m.add_argument("--mine-margin-s", type=float, default=d.mine_margin_s,
                   help="keep mined windows this far from true keywords too (default 0)")
    p.add_argument("--threads", type=int, default=0, help="threads (default: all cores)")
    p.set_defaults(func=cmd_train_embedding)


def cmd_train_embedding(args: argparse.Namespace) -> None:
    import dataclasses
    import math
    from pathlib import Path

    from kwspot.cli.common import data_config
    from kwspot.datasets.prepare import is_prepared
    from kwspot.wakeword.keywords import EmbeddingTrainConfig, train_embedding_classifier

    data = data_config(args)
    root = Path(args.data)  # as open_dataset reads prepared data: a folder or its manifest
    prepared = (root.is_dir() or root.suffix.lower() == ".jsonl") and \
        is_prepared(root if root.is_dir() else root.parent)
    if args.train_unknown_fraction is None and not prepared:
        # every negative clip, weighted instead (prepared data has its recipe fixed)
        data = dataclasses.replace(data, train_unknown_fraction=math.inf)
    cfg = EmbeddingTrainConfig(
        data=data, name=args.name, keyword_copies=args.keyword_copies,
        unknown_copies=args.unknown_copies, silence_copies=args.silence_copies,
        context=args.context, unknown_weight=args.unknown_weight, epochs=args.epochs,
        seed=args.seed, heads=args.heads, mine_streams=tuple(args.mine_streams),
        mine_models=tuple(args.mine_models), mine_rounds=args.mine_rounds,
        mine_threshold=args.mine_threshold, mine_limit=args.mine_limit,
        mine_margin_s=args.mine_margin_s, threads=args.threads,
        command=" ".join(["kwspot", *sys.argv[1:]]))
    summary = train_embedding_classifier(
        cfg, args.out, args.work, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps(summary, indent=1))
    accuracy = summary["val_accuracy"]
    print(f"{summary['model']}: validation accuracy {accuracy:.2%} on augmented 1.98 s "
          f"windows of the validation split (not streams: measure those with `kwspot "
          f"eval-stream`, then `kwspot calibrate --shared`)", file=sys.stderr)
