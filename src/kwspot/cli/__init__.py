"""The ``kwspot`` command: thin subcommands over the library functions, same parameter names.

Errors the user can fix print as one line (``kwspot: error: ...``); ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from kwspot.cli.data import (
    add_negatives_parser,
    add_prepare_parser,
    add_streams_parser,
    add_synth_parser,
)
from kwspot.cli.evaluation import (
    add_bench_parser,
    add_calibrate_parser,
    add_eval_parser,
    add_eval_stream_parser,
    add_mine_parser,
)
from kwspot.cli.export import add_export_parser, add_verify_export_parser
from kwspot.cli.runtime import (
    add_demo_parser,
    add_detect_parser,
    add_listen_parser,
    add_serve_parser,
)
from kwspot.cli.tools import (
    add_review_export_parser,
    add_review_parser,
    add_train_embedding_parser,
    add_wakeword_parser,
)
from kwspot.cli.training import add_table_parser, add_train_parser
from kwspot.errors import KwspotError

SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_prepare_parser, add_train_parser, add_train_embedding_parser, add_table_parser,
    add_eval_parser, add_export_parser,
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
