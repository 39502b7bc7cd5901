"""``kwspot review``, ``review export`` and ``wakeword``: the tools beside the pipeline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kwspot.errors import KwspotError


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


def add_wakeword_parser(sub: argparse._SubParsersAction) -> None:
    from kwspot.wakeword.cli import add_wakeword_parser as add

    add(sub)


def add_train_embedding_parser(sub: argparse._SubParsersAction) -> None:
    from kwspot.wakeword.cli import add_train_embedding_parser as add

    add(sub)
