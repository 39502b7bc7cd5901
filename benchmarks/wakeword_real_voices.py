"""Do wake words trained from typed text work on real voices? For Speech Commands words that are
not among the 12-class keywords (happy, bed, cat, marvin, sheila, house), train a detector with
``kwspot wakeword WORD`` from text only, never from recordings of the word, then measure it on
real people:

- recall on *every* real recording of the word in the dataset (none was trained on), each
  placed in a stream among other words (the keyword streams of all three splits);
- false alarms per hour on the held-out *test* negatives stream: real test-split speakers
  saying other words, FSDD's test speaker, TTS sentences in test voices (built by
  ``kwspot streams --split test``), over a generated noise bed at 5-25 dB SNR.

The negatives the wake word trains on are the dataset's *training-split* clips of other
words and FSDD's training speakers, and the training noise files; thresholds are calibrated by
the flow on its own held-out streams (synthetic voices, held-out training-split speakers).
Recall and FA/h are reported at that calibrated threshold, and at the thresholds that reach
0.5 and 1 FA/h on the test negatives (an oracle operating point, labelled so).

    python benchmarks/wakeword_real_voices.py --words happy marvin \
        --json docs/results/wakeword-real-voices.json

Each word's model and streams stay in ``--work`` (default runs/wakeword-real); a rerun reuses
them, so a killed run resumes.

``--heads 3`` averages three heads (seeds 0-2) on the same windows; run after (or before) a
one-head run of the same words, it reuses their windows and streams:

    python benchmarks/wakeword_real_voices.py --words happy sheila marvin --heads 3 \
        --json docs/results/wakeword-real-voices-h3.json

``--seed N`` draws other windows and another head (the test streams stay the same), to see
how far one seed's figures move.

``--recordings N`` gives the flow N real recordings of the word (``kwspot wakeword
--recordings``): training-split recordings of N different speakers. Recall is then measured
on the validation and test splits' recordings only (other speakers, none trained on);
``--recall-splits validation test`` measures a text-only model on the same recordings:

    python benchmarks/wakeword_real_voices.py --words happy bed cat --flite-share 0.3 \
        --piper-share 0.3 --recordings 10 --json docs/results/wakeword-recordings.json

``--backbone tc-resnet8`` measures the other backbone on the same windows, streams and
negatives: TC-ResNet8 trained from scratch on kwspot's MFCCs (40 epochs, dropout 0.5, the
best epoch by validation loss), its model in ``<work>/<word>-tc-resnet8``:

    python benchmarks/wakeword_real_voices.py --words happy sheila marvin \
        --backbone tc-resnet8 --json docs/results/wakeword-real-voices-tc-resnet8.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from kwspot.datasets.folder import guess_speaker
from kwspot.datasets.negatives import fsdd_files
from kwspot.datasets.streams import StreamConfig, build_streams
from kwspot.datasets.voices import SYNTHESIZERS
from kwspot.evaluate.streams import match, score_stream, threshold_grid
from kwspot.runtime.detector import Detector
from kwspot.wakeword.data import DataConfig
from kwspot.wakeword.flow import EMBEDDING, WakewordConfig, slug, wakeword
from kwspot.wakeword.train import HeadConfig

SHARED = Path(__file__).parents[1].parent / "shared" / "data"
SPLITS = ("train", "validation", "test")
FOLDER_ORDER = ("flite", "piper", "kokoro")  # of the shares in a model folder's name


def training_negatives(data: Path, fsdd: Path, out: Path) -> Path:
    """A folder of links to the training-split clips (all words; the flow skips the folder
    named after the phrase) and FSDD's training speakers."""
    if (out / ".done").is_file():
        return out
    lists = {name: set((data / f"{name}_list.txt").read_text().split())
             for name in ("validation", "testing")}
    for clip in sorted(data.glob("*/*.wav")):
        rel = f"{clip.parent.name}/{clip.name}"
        if clip.parent.name.startswith("_") or any(rel in v for v in lists.values()):
            continue
        link = out / clip.parent.name / clip.name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(clip.resolve())
    for path in fsdd_files(fsdd, "train"):
        link = out / "fsdd" / Path(path).name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(Path(path).resolve())
    (out / ".done").write_text("")
    return out


def pick_recordings(word: str, data: Path, count: int, seed: int, out: Path) -> Path:
    """Links to ``count`` training-split recordings of ``word``, one per speaker, drawn by
    ``seed``."""
    held = {line for name in ("validation", "testing")
            for line in (data / f"{name}_list.txt").read_text().split()}
    clips = [c for c in sorted((data / word).glob("*.wav")) if f"{word}/{c.name}" not in held]
    chosen: dict[str, Path] = {}
    for i in np.random.default_rng(seed).permutation(len(clips)):
        speaker = guess_speaker(clips[int(i)])
        chosen.setdefault(speaker, clips[int(i)])
        if len(chosen) == count:
            break
    if len(chosen) < count:
        raise SystemExit(f"{word}: only {len(chosen)} training-split speakers, not {count}")
    out.mkdir(parents=True, exist_ok=True)
    for clip in chosen.values():
        link = out / clip.name
        if not link.exists():
            link.symlink_to(clip.resolve())
    return out


def streams_for(word: str, data: Path, fsdd: Path, work: Path, minutes: float) -> dict[str, Path]:
    out = {}
    for split in SPLITS:
        folder = work / "streams" / slug(word) / (f"test-{minutes:g}min" if split == "test"
                                                  else split)
        if not (folder / "negatives.json").is_file():
            build_streams(str(data), folder, StreamConfig(
                split=split, keywords=(word,), fsdd=str(fsdd),
                negatives_minutes=minutes if split == "test" else 0.1, seed=0,
                require_keywords=False))
        out[split] = folder
    return out


def best_at(rows: list[dict], target: float) -> dict | None:
    """The oracle operating point of a threshold sweep (rows in threshold order): the highest
    recall with at most ``target`` FA/h, the first such threshold on a tie. Every spotter
    compared here is picked by this one rule."""
    ok = [r for r in rows if r["fa_per_hour"] <= target]
    return max(ok, key=lambda r: r["recall"]) if ok else None


def measure(model: Path, streams: dict[str, Path], word: str,
            recall_splits: tuple[str, ...] = SPLITS) -> dict:
    detector = Detector(model, keywords=[word])
    refractory = detector.config.refractory_ms / 1000
    window_s = detector.window / detector.model.sample_rate
    keyword_streams = [score_stream(detector, streams[s] / "keywords.wav")
                       for s in recall_splits]
    negatives = [score_stream(detector, streams["test"] / "negatives.wav")]

    def at(threshold: float) -> dict:
        t = np.array([threshold])
        hits = match(keyword_streams, [word], t, refractory, window_s=window_s)
        fas = match(negatives, [word], t, refractory, window_s=window_s)
        return {"threshold": round(float(threshold), 6), "recall": 1 - hits.frr(word),
                "fa_per_hour": fas.fa_per_hour(word), "fa": int(fas.false_alarms[word])}

    grid = [at(t) for t in threshold_grid()]
    oracle = {f"{target:g}": best_at(grid, target) for target in (0.5, 1.0)}
    calibrated = detector.thresholds[0]
    return {"recordings": sum(len(s.events) for s in keyword_streams),
            "recall_splits": list(recall_splits),
            "negatives_hours": round(sum(s.duration_s for s in negatives) / 3600, 3),
            "calibrated": at(calibrated), "at_test_fa_per_hour": oracle}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(SHARED / "speech_commands_lite"))
    parser.add_argument("--fsdd", default=str(SHARED / "fsdd"))
    parser.add_argument("--words", nargs="+", default=["happy", "bed", "cat", "marvin",
                                                        "sheila", "house"])
    parser.add_argument("--work", default="runs/wakeword-real")
    parser.add_argument("--test-minutes", type=float, default=60.0)
    parser.add_argument("--backbone", default=EMBEDDING)
    parser.add_argument("--heads", type=int, default=1,
                        help="heads averaged (embedding backbone); the same work folder, so "
                             "a run with another count reuses the windows and streams")
    for synth in SYNTHESIZERS:  # models go to WORD-...-<name><share>
        parser.add_argument(f"--{synth.name}-share", type=float, default=0.0,
                            help=f"share of positives and sentences said by {synth.title}'s "
                                 "voices where installed (default 0)")
    parser.add_argument("--seed", type=int, default=0,
                        help="data and head seed (models go to WORD-...-seed<N> unless 0), to "
                             "see how much one seed's figures move")
    parser.add_argument("--recordings", type=int, default=0, metavar="N",
                        help="give the flow N training-split recordings of the word (N "
                             "speakers; models go to WORD-...-recN); recall on the validation "
                             "and test recordings only")
    parser.add_argument("--recall-splits", nargs="+", choices=SPLITS, default=None,
                        help="the splits whose recordings recall is measured on (default all "
                             "three; validation and test with --recordings)")
    parser.add_argument("--calibration-minutes", type=float, default=60.0,
                        help="the flow's held-out negatives stream (models go to "
                             "WORD-...-calN unless 60)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    recall_splits = tuple(args.recall_splits or (("validation", "test") if args.recordings
                                                 else SPLITS))
    if args.recordings and "train" in recall_splits:
        parser.error("--recordings trains on training-split recordings: measure recall on "
                     "validation and test only")
    scratch = args.backbone != EMBEDDING
    head = HeadConfig(epochs=40, dropout=0.5, seed=args.seed) if scratch else \
        HeadConfig(seed=args.seed)
    data, fsdd, work = Path(args.data), Path(args.fsdd), Path(args.work)
    negatives = training_negatives(data, fsdd, work / "training-negatives")
    results = json.loads(Path(args.json).read_text()) if args.json and \
        Path(args.json).is_file() else {"words": {}}
    for word in args.words:
        start = time.perf_counter()
        name = f"{slug(word)}-{args.backbone}" if scratch else slug(word)
        shares = {f"{synth.name}_share": getattr(args, f"{synth.name}_share")
                  for synth in SYNTHESIZERS}
        for synth in sorted(SYNTHESIZERS, key=lambda s: FOLDER_ORDER.index(s.name)
                            if s.name in FOLDER_ORDER else len(FOLDER_ORDER)):
            if shares[f"{synth.name}_share"]:
                name += f"-{synth.name}{shares[f'{synth.name}_share']:g}"
        if args.recordings:
            name += f"-rec{args.recordings}"
        calibration = f"-cal{args.calibration_minutes:g}" \
            if args.calibration_minutes != 60.0 else ""
        name += calibration
        if args.seed:
            name += f"-seed{args.seed}"
        recordings = (str(pick_recordings(
            word, data, args.recordings, args.seed,
            work / "recordings" / f"{slug(word)}-{args.recordings}-seed{args.seed}")),) \
            if args.recordings else ()
        summary = wakeword(WakewordConfig(
            phrase=word, out=str(work / name),
            data=DataConfig(word, seed=args.seed, **shares),
            negatives=(str(negatives),), noise=(str(data / "_background_noise_"),),
            recordings=recordings,
            head=head, backbone=args.backbone, heads=args.heads,
            calibration_minutes=args.calibration_minutes),
            log=lambda line: print(line, file=sys.stderr, flush=True))
        streams = streams_for(word, data, fsdd, work, args.test_minutes)
        row = {"flow": summary, **measure(Path(summary["model"]), streams, word, recall_splits),
               "wall_s": round(time.perf_counter() - start, 1)}
        # another seed is another row: it never replaces seed 0's
        key = word + (f"-rec{args.recordings}" if args.recordings else "") + calibration + (
            f"-seed{args.seed}" if args.seed else "")
        if recall_splits != SPLITS and not args.recordings:
            key += "-" + "-".join(recall_splits)
        results["words"][key] = row
        cal = row["calibrated"]
        print(f"{word}: {row['recordings']} real recordings, recall {100 * cal['recall']:.1f} % "
              f"at the calibrated threshold {cal['threshold']:.4f}, "
              f"{cal['fa_per_hour']:.2f} FA/h on {row['negatives_hours']} h of test negatives",
              flush=True)
        if args.json:
            command = " ".join(["python", *sys.argv])
            # every command that wrote rows here, the latest also as "command"
            commands = results.setdefault("commands", [results["command"]]
                                          if "command" in results else [])
            if command not in commands:
                commands.append(command)
            results["command"] = command
            Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
