"""pocketsphinx's keyphrase spotting on the data `wakeword_real_voices.py` measures kwspot's
wake words on, so the two sit in one table. pocketsphinx needs no training: its bundled US
English acoustic model and CMU dictionary spell the word, and ``kws_threshold`` sets how
readily it fires.

The same streams (built by `wakeword_real_voices.py`, or here when missing): every real
recording of the word in the keyword streams of all three splits for recall, the held-out
test negatives stream (real test-split speakers saying other words, FSDD's test speaker, TTS
sentences; 5-25 dB SNR) for false alarms per hour. Detections are matched to the truth by the
very code kwspot's stream evaluation uses (``kwspot.evaluate.streams.tally``: a hit ends inside
[start, end + 1 s] of the word).

Reported: pocketsphinx at its default threshold (1e-30), and, over a sweep of thresholds, the
best recall at <= 0.5 and <= 1 FA/h on the test negatives (an oracle operating point, chosen
on the data it is reported on, labelled so, as for kwspot's oracle columns).

    pip install pocketsphinx==5.1.1
    python benchmarks/pocketsphinx_real_voices.py --words happy sheila marvin \\
        --json docs/results/wakeword-pocketsphinx.json

Each (word, threshold) is written to the JSON when done; a rerun skips those, so a killed run
resumes (``--thresholds`` adds points to a sweep). One core decodes 20-33x faster than real
time here, so each threshold of a word takes about 2-3.5 minutes (one hour of negatives plus
the keyword streams).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

from kwspot.audio import load_audio
from kwspot.datasets.streams import read_truth
from kwspot.evaluate.streams import TOLERANCE_S, Outcome, ScoredStream, tally

sys.path.insert(0, str(Path(__file__).parent))
from wakeword_real_voices import SHARED, SPLITS, best_at, streams_for

DEFAULT_THRESHOLD = 1e-30  # pocketsphinx's own default kws_threshold
THRESHOLDS = (1e-30, 1e-20, 1e-10, 1e-5, 1e-2, 1.0, 1e5, 1e10)
RATE = 16000
CHUNK = 1600  # 100 ms of audio per process_raw call, as a live microphone loop would feed


def spot(audio: np.ndarray, word: str, threshold: float) -> list[float]:
    """End times (s) of pocketsphinx's keyphrase detections over one recording, decoded in
    100 ms chunks the way its live-audio examples do: on a detection the utterance restarts."""
    from pocketsphinx import Config, Decoder

    decoder = Decoder(Config(keyphrase=word, kws_threshold=threshold, lm=None,
                             samprate=RATE, logfn="/dev/null"))
    pcm = np.clip(np.round(audio * 32768), -32768, 32767).astype(np.int16)
    ends: list[float] = []
    utterance_start = 0
    decoder.start_utt()
    for pos in range(0, len(pcm), CHUNK):
        decoder.process_raw(pcm[pos:pos + CHUNK].tobytes(), False, False)
        if decoder.hyp() is not None:
            segments = list(decoder.seg())
            frames = segments[-1].end_frame + 1 if segments else 0  # 100 frames a second
            ends.append(utterance_start / RATE + frames / 100)
            decoder.end_utt()
            decoder.start_utt()
            utterance_start = min(pos + CHUNK, len(pcm))
    decoder.end_utt()
    return ends


def _stream(path: Path) -> tuple[np.ndarray, ScoredStream]:
    wav, truth = read_truth(path)
    audio = load_audio(wav, RATE)
    empty = ScoredStream(Path(wav).stem, float(truth["duration_s"]), np.zeros(0),
                         np.zeros((0, 1)), truth["events"], truth.get("negatives", []))
    return audio, empty


def measure(word: str, streams: dict[str, Path], threshold: float) -> dict:
    started = time.perf_counter()
    positives = Outcome([word], 0.0)
    negatives = Outcome([word], 0.0)
    seconds = 0.0
    for outcome, paths in ((positives, [streams[s] / "keywords.wav" for s in SPLITS]),
                           (negatives, [streams["test"] / "negatives.wav"])):
        for path in paths:
            audio, stream = _stream(path)
            seconds += len(audio) / RATE
            outcome.hours += stream.duration_s / 3600
            events = [(0, end) for end in spot(audio, word, threshold)]
            tally(outcome, stream, events, TOLERANCE_S)
    elapsed = time.perf_counter() - started
    return {"threshold": threshold, "recall": 1 - positives.frr(word),
            "recordings": positives.truths[word],
            "fa_per_hour": negatives.fa_per_hour(word), "fa": negatives.false_alarms[word],
            "negatives_hours": round(negatives.hours, 3),
            "x_real_time": round(seconds / elapsed, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(SHARED / "speech_commands_lite"))
    parser.add_argument("--fsdd", default=str(SHARED / "fsdd"))
    parser.add_argument("--words", nargs="+", default=["happy", "sheila", "marvin"])
    parser.add_argument("--work", default="runs/wakeword-real")
    parser.add_argument("--test-minutes", type=float, default=60.0)
    parser.add_argument("--thresholds", type=float, nargs="+", default=list(THRESHOLDS))
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if importlib.util.find_spec("pocketsphinx") is None:
        sys.exit("this comparison needs pocketsphinx: pip install pocketsphinx==5.1.1")
    out = Path(args.json) if args.json else None
    results = json.loads(out.read_text()) if out and out.is_file() else {"words": {}}
    results.update(pocketsphinx=importlib.metadata.version("pocketsphinx"),
                   model="bundled en-us acoustic model, cmudict-en-us",
                   default_threshold=DEFAULT_THRESHOLD)
    for word in args.words:
        streams = streams_for(word, Path(args.data), Path(args.fsdd), Path(args.work),
                              args.test_minutes)
        entry = results["words"].setdefault(word, {"sweep": []})
        for threshold in sorted(set(args.thresholds) | {DEFAULT_THRESHOLD}):
            if any(r["threshold"] == threshold for r in entry["sweep"]):
                continue
            row = measure(word, streams, threshold)
            entry["sweep"] = sorted([*entry["sweep"], row], key=lambda r: r["threshold"])
            print(f"{word} @ {threshold:g}: recall {100 * row['recall']:.1f} % of "
                  f"{row['recordings']}, {row['fa_per_hour']:.2f} FA/h "
                  f"({row['x_real_time']}x real time)", flush=True)
            entry["default"] = next((r for r in entry["sweep"]
                                     if r["threshold"] == DEFAULT_THRESHOLD), None)
            entry["at_test_fa_per_hour"] = {f"{t:g}": best_at(entry["sweep"], t)
                                            for t in (0.5, 1.0)}
            if out:
                results["command"] = " ".join(["python", *sys.argv])
                out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
