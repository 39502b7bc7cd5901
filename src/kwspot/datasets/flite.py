"""A second offline speech synthesizer for wake-word positives: CMU Flite's clustergen voices
(``apt-get install flite``: kal16, awb, rms, slt at 16 kHz), which sound less like eSpeak's
formant synthesis. Optional: without the ``flite`` program there are no Flite voices, and the
wake-word flow uses eSpeak NG alone.

Each utterance runs the ``flite`` program once (~40 ms) with a duration stretch and a target
pitch, so one voice gives many speakers. The output is deterministic for the same text,
voice, stretch and pitch."""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kwspot.errors import KwspotError

# 16 kHz English voices of the Debian/Ubuntu flite package, and the pitch range each is
# driven over (Hz; the male voices sit near 100, slt near 170)
VOICES = {"kal16": (80.0, 150.0), "awb": (80.0, 150.0), "rms": (80.0, 150.0),
          "slt": (140.0, 260.0)}
HELD_OUT = "awb"  # the validation voice: training never hears it


@dataclass(frozen=True)
class FliteStyle:
    voice: str
    stretch: float  # duration stretch: > 1 is slower
    pitch_hz: float

    @property
    def speaker(self) -> str:
        return f"flite-{self.voice}"


@functools.cache
def _listed_voices(program: str) -> tuple[str, ...]:
    try:
        listed = subprocess.run([program, "-lv"], capture_output=True, text=True, timeout=10,
                                check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(listed.replace(":", " ").split())


def flite_voices() -> list[str]:
    """The Flite voices this machine can use (none without the ``flite`` program); the
    program is asked once per process."""
    program = shutil.which("flite")
    if program is None:
        return []
    names = set(_listed_voices(program))
    return [v for v in VOICES if v in names]


def random_flite_style(rng: np.random.Generator, voices: list[str]) -> FliteStyle:
    voice = voices[int(rng.integers(len(voices)))]
    low, high = VOICES[voice]
    return FliteStyle(voice, float(rng.uniform(0.8, 1.35)), float(rng.uniform(low, high)))


def speak_flite(text: str, style: FliteStyle) -> np.ndarray:
    """``text`` said by Flite in ``style``: float32 mono at 16 kHz, silence trimmed."""
    import soundfile as sf

    from kwspot.datasets.espeak import speech_span

    program = shutil.which("flite")
    if program is None:
        raise KwspotError("flite is not installed (apt-get install flite)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "say.wav"
        try:
            subprocess.run([program, "-voice", style.voice,
                            "--setf", f"duration_stretch={style.stretch:.3f}",
                            "--setf", f"int_f0_target_mean={style.pitch_hz:.1f}",
                            "-t", text, "-o", str(out)],
                           capture_output=True, timeout=30, check=True)
            audio, rate = sf.read(str(out), dtype="float32")
        except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
            raise KwspotError(f"flite could not say {text!r} ({exc})") from None
    if rate != 16000:
        raise KwspotError(f"flite voice {style.voice} speaks at {rate} Hz, not 16 kHz")
    start, end = speech_span(audio)
    return audio[start:end]
