"""``kwspot wakeword PHRASE``: the command-line face of ``kwspot.wakeword.flow.wakeword``."""

from __future__ import annotations

import argparse
import json
import sys


def add_wakeword_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "wakeword", help="a detector for your own phrase from typed text (no recordings)",
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
    p.add_argument("--force", action="store_true", help="start over instead of resuming")
    p.set_defaults(func=cmd_wakeword)


def cmd_wakeword(args: argparse.Namespace) -> None:
    from kwspot.errors import KwspotError
    from kwspot.wakeword.data import DataConfig
    from kwspot.wakeword.flow import WakewordConfig, check_phrase, slug, wakeword
    from kwspot.wakeword.train import HeadConfig

    for name in ("positives", "sentences", "epochs"):
        if getattr(args, name) < 1:
            raise KwspotError(f"--{name} must be at least 1")
    phrase = check_phrase(args.phrase)
    out = args.out or f"runs/wakeword-{slug(phrase)}"
    cfg = WakewordConfig(
        phrase=phrase, out=out, negatives=tuple(args.negatives), noise=tuple(args.noise),
        target_fa_per_hour=args.target_fa_per_hour,
        calibration_minutes=args.calibration_minutes,
        data=DataConfig(phrase, positives=args.positives, sentences=args.sentences,
                        seed=args.seed),
        head=HeadConfig(epochs=args.epochs, seed=args.seed), backbone=args.backbone)
    summary = wakeword(cfg, log=lambda line: print(line, file=sys.stderr, flush=True),
                       force=args.force)
    cal = summary["calibration"]
    print(json.dumps(summary, indent=1))
    print(f"{summary['model']}: threshold {summary['threshold']:.3f}; on {cal['hours']:.2f} h of "
          f"{cal['measured_on']}: {cal['fa_per_hour']:.2f} false alarms/h, false rejects "
          f"{100 * cal['frr']:.1f} %. Real voices were not measured: see docs/results.md.",
          file=sys.stderr)
