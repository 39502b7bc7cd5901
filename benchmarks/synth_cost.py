"""CPU cost of one utterance for each offline synthesizer the wake-word flow can use: the
median wall time of saying a phrase, one thread, over six phrases said several times each
(Flite runs as a separate process, so wall time, not this process's CPU time).

    python benchmarks/synth_cost.py --repeats 5 --json docs/results/synth-cost.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from kwspot.datasets import espeak, flite, kokoro, piper

PHRASES = ("hey jarvis", "sheila", "what time is it in the morning", "marvin",
           "turn the lights off please", "happy")


def synthesizers() -> dict[str, Callable[[str, np.random.Generator], np.ndarray]]:
    """Each synthesizer this machine has, drawing styles as the flow does."""
    out: dict[str, Callable[[str, np.random.Generator], np.ndarray]] = {
        "espeak-ng": lambda t, r: espeak.speak(t, espeak.random_style(r))}
    if flite.flite_voices():
        out["flite"] = lambda t, r: flite.speak_flite(
            t, flite.random_flite_style(r, flite.flite_voices()))
    if piper.piper_voices():
        out["piper"] = lambda t, r: piper.speak_piper(
            t, piper.random_piper_style(r, piper.piper_voices()))
    if kokoro.kokoro_voices():
        out["kokoro"] = lambda t, r: kokoro.speak_kokoro(
            t, kokoro.random_kokoro_style(r, list(kokoro.kokoro_voices())))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = {}
    for name, say in synthesizers().items():
        rng = np.random.default_rng(0)
        say("warm up", rng)  # loads the model once, as the flow does
        times, seconds = [], 0.0
        for _ in range(args.repeats):
            for phrase in PHRASES:
                start = time.perf_counter()
                seconds += len(say(phrase, rng)) / 16000
                times.append(time.perf_counter() - start)
        rows[name] = {"median_s": round(float(np.median(times)), 4),
                      "utterances": len(times),
                      "mean_audio_s": round(seconds / len(times), 3)}
        print(f"{name:10s} {1000 * rows[name]['median_s']:8.1f} ms an utterance "
              f"(median of {len(times)}; {rows[name]['mean_audio_s']} s of audio each)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "command": " ".join(["python", *sys.argv]), "phrases": list(PHRASES),
            "threads": 1, "synthesizers": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
