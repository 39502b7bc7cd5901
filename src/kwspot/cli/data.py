"""``kwspot prepare``, ``synth``, ``negatives``, ``streams``: the data stage."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kwspot.cli.common import _floats, _words, add_data_args, data_config
from kwspot.errors import KwspotError


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


def add_synth_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="synthesize a folder-per-label keyword dataset (offline TTS)",
                       description="Speak each word with espeak-ng (shipped by pip, offline) in "
                       "many voices, variants, pitches and speeds, with noise, into "
                       "<out>/<word>/<speaker>_nohash_NNNN.wav (16 kHz; the speaker names the "
                       "voice, variant, pitch and speed band, so splits keep voices apart). "
                       "The same --seed gives the same files.")
    p.add_argument("--words", type=_words, required=True, metavar="W1,W2=N,..",
                   help="words or short phrases, comma separated; WORD=N gives that word N "
                        "clips instead of --clips-per-word")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--clips-per-word", type=int, default=100, help="clips per word (default 100)")
    p.add_argument("--clip-ms", default="1000", metavar="MS|auto",
                   help="clip length (default 1000, as Speech Commands; longer speech is said "
                        "faster to fit); 'auto' follows each phrase's natural length")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.set_defaults(func=cmd_synth)


def parse_word_counts(items: list[str], default: int) -> dict[str, int]:
    """["yes", "hey kwspot=500"] -> {"yes": default, "hey kwspot": 500}."""
    counts: dict[str, int] = {}
    for item in items:
        word, sep, count = item.rpartition("=") if "=" in item else (item, "", "")
        word = word.strip()
        if word in counts:
            raise KwspotError(f"--words names {word!r} twice")
        if sep:
            try:
                counts[word] = int(count)
            except ValueError:
                raise KwspotError(f"--words {item!r}: the count after '=' must be a whole "
                                  "number") from None
        else:
            counts[word] = default
        if counts[word] < 1:
            raise KwspotError(f"--words {item!r}: at least 1 clip")
    return counts


def cmd_synth(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.progress import Progress

    from kwspot.datasets.synth import synthesize_dataset

    if args.clips_per_word < 1:
        raise KwspotError("--clips-per-word must be at least 1")
    if not args.words:
        raise KwspotError("--words needs at least one word")
    counts_for = parse_word_counts(list(args.words), args.clips_per_word)
    if args.clip_ms == "auto":
        seconds = None
    else:
        try:
            seconds = float(args.clip_ms) / 1000
        except ValueError:
            raise KwspotError(f"--clip-ms must be milliseconds or 'auto', got "
                              f"{args.clip_ms!r}") from None
        if not 0 < seconds <= 60:
            raise KwspotError(f"--clip-ms must be in (0, 60000], got {args.clip_ms}")
    with Progress(console=Console(stderr=True)) as bar:
        task = bar.add_task("synthesize", total=sum(counts_for.values()))
        try:
            counts = synthesize_dataset(
                list(counts_for), Path(args.out), counts_for, args.seed,
                progress=lambda done, _total: bar.update(task, completed=done),
                clip_seconds=seconds)
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
