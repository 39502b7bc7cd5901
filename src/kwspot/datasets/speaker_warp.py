"""New speakers from a synthetic voice: the WORLD vocoder's analysis (pitch, spectral
envelope, aperiodicity), the envelope stretched along frequency (a shorter or longer vocal
tract moves every formant by one ratio) and the pitch moved to a new median, resynthesized.

Why: a wake word's positives come from a handful of synthetic voices (eSpeak NG's formant
voices, Flite's four, Piper's one), and real-voice recall follows how many kinds of voice the
positives cover (docs/results.md). A tape-speed change moves pitch, formants and tempo
together; people differ in pitch and vocal-tract length independently, and this draws both.
Needs ``pyworld`` (``kwspot[voices]``); ``available()`` says whether it is installed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kwspot.datasets.synth import SAMPLE_RATE

FRAME_MS = 5.0
F0_FLOOR_HZ, F0_CEIL_HZ = 60.0, 500.0


@dataclass(frozen=True)
class Warp:
    formant_ratio: float  # > 1: a shorter vocal tract, every formant up by this ratio
    f0_median_hz: float  # the median pitch of the voiced frames after the warp


def available() -> bool:
    """Whether the WORLD vocoder (pyworld) is installed."""
    try:
        import pyworld  # noqa: F401
    except ImportError:
        return False
    return True


def random_warp(rng: np.random.Generator) -> Warp:
    """A speaker drawn from a range of sizes: pitch and formants rise together (a large adult
    at 0 to a small one at 1), each with its own scatter, as in people."""
    size = float(rng.uniform(0.0, 1.0))
    formant = 0.88 + 0.30 * size + float(rng.normal(0.0, 0.03))
    f0 = 90.0 * 2.6**size * float(rng.uniform(0.9, 1.1))
    return Warp(float(np.clip(formant, 0.82, 1.25)), float(np.clip(f0, 75.0, 300.0)))


def _stretch(envelope: np.ndarray, ratio: float) -> np.ndarray:
    """Each frame's envelope with bin k taken from bin k / ratio (linear interpolation,
    the top bin repeated past the end)."""
    bins = envelope.shape[1]
    source = np.minimum(np.arange(bins) / ratio, bins - 1)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, bins - 1)
    frac = source - low
    return envelope[:, low] * (1.0 - frac) + envelope[:, high] * frac


def warp_speaker(audio: np.ndarray, warp: Warp) -> np.ndarray:
    """``audio`` (16 kHz mono float) said by the warped speaker, same length and peak level.
    Audio with no voiced frame is returned unchanged: there is no pitch to move."""
    import pyworld

    x = np.ascontiguousarray(audio, dtype=np.float64)
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak == 0.0:
        return audio
    f0, times = pyworld.dio(x, SAMPLE_RATE, f0_floor=F0_FLOOR_HZ, f0_ceil=F0_CEIL_HZ,
                            frame_period=FRAME_MS)
    f0 = pyworld.stonemask(x, f0, times, SAMPLE_RATE)
    voiced = f0 > 0
    if not voiced.any():
        return audio
    envelope = pyworld.cheaptrick(x, f0, times, SAMPLE_RATE)
    aperiodicity = pyworld.d4c(x, f0, times, SAMPLE_RATE)
    f0 = f0 * (warp.f0_median_hz / float(np.median(f0[voiced])))
    y = pyworld.synthesize(f0, np.ascontiguousarray(_stretch(envelope, warp.formant_ratio)),
                           aperiodicity, SAMPLE_RATE, FRAME_MS)
    y = np.pad(y, (0, max(0, len(x) - len(y))))[: len(x)]
    out_peak = float(np.max(np.abs(y)))
    return (y * (peak / out_peak) if out_peak > 0 else y).astype(np.float32)


__all__ = ["Warp", "available", "random_warp", "warp_speaker"]
