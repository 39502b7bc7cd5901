"""How much like real voices each offline synthesizer sounds, to a model trained on real ones.

Every voice says the ten Speech Commands keywords (yes ... go), each clip drawn with that
synthesizer's own variation (speed, pitch, sampling noise), and the shipped 12-class
speech-embedding model classifies them. Its keywords were real recordings only, but eSpeak NG
sentences were among its negatives, which biases eSpeak's accuracy down. Accuracy is a proxy:
a voice it recognises as well as people is closer to them than one it does not. It says
nothing about the wake-word flow directly (benchmarks/wakeword_real_voices.py measures that).

    python benchmarks/voices_like_people.py --clips 10 --json docs/results/voices-like-people.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from kwspot.datasets import espeak, flite, kokoro, piper
from kwspot.runtime.model import SHIPPED_EMBEDDING, load_keyword_model

WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")


def centred(audio: np.ndarray, samples: int) -> np.ndarray:
    """The clip in the middle of a window, peak at 0.3."""
    out = np.zeros(samples, np.float32)
    audio = audio[:samples]
    start = (samples - len(audio)) // 2
    out[start: start + len(audio)] = audio * (0.3 / (np.abs(audio).max() + 1e-9))
    return out


def speakers() -> dict[str, Callable[[str, np.random.Generator], np.ndarray]]:
    """Each voice this machine has: eSpeak NG (all its voices, as the flow draws them),
    each Flite, Piper and Kokoro voice."""
    out: dict[str, Callable[[str, np.random.Generator], np.ndarray]] = {
        "espeak-ng": lambda w, r: espeak.speak(w, espeak.random_style(r))}
    for v in flite.flite_voices():
        out[f"flite {v}"] = lambda w, r, v=v: flite.speak_flite(
            w, flite.random_flite_style(r, [v]))
    for pv in piper.piper_voices():
        out[f"piper {pv.name}"] = lambda w, r, pv=pv: piper.speak_piper(
            w, piper.random_piper_style(r, [pv]))
    for kv in kokoro.kokoro_voices():
        out[f"kokoro {kv}"] = lambda w, r, kv=kv: kokoro.speak_kokoro(
            w, kokoro.KokoroStyle(kv, float(r.uniform(0.8, 1.2))))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=10, help="clips per word and voice")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    model = load_keyword_model(SHIPPED_EMBEDDING)
    rows = {}
    for name, say in speakers().items():
        rng = np.random.default_rng(args.seed)
        clips, truth = [], []
        for word in WORDS:
            for _ in range(args.clips):
                clips.append(centred(say(word, rng), model.window_samples))
                truth.append(model.labels.index(word))
        posteriors = model.posteriors(np.stack(clips))
        truth_a = np.array(truth)
        rows[name] = {"accuracy": round(float(np.mean(posteriors.argmax(1) == truth_a)), 4),
                      "mean_true_posterior": round(float(np.mean(
                          posteriors[np.arange(len(truth_a)), truth_a])), 4),
                      "clips": len(truth_a)}
        print(f"{name:28s} accuracy {100 * rows[name]['accuracy']:5.1f} %", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "command": " ".join(["python", *sys.argv]),
            "model": "shipped-embedding (12 classes; keywords from real Speech Commands "
                     "voices, eSpeak NG sentences among its negatives)",
            "words": list(WORDS), "voices": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
