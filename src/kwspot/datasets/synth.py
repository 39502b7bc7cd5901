"""Synthetic keyword clips and datasets from offline TTS (eSpeak NG, see datasets.espeak).

A new wake word has no recordings. Thousands of varied clips of any word cost seconds; mixed
with real speech (and noise) they are enough to get a first model going. This module places
each utterance in a clip with a random gain, offset and noise, writes datasets in the Speech
Commands layout (the synthetic voice as the speaker) and renders long recordings with known
word times for streaming tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from kwspot.audio import save_audio
from kwspot.datasets.espeak import (
    MAX_WPM,
    SAMPLE_RATE,
    VoiceStyle,
    random_style,
    speak,
    speed_range,
    spoken_seconds,
)

__all__ = [
    "make_clip",
    "phrase_clip_seconds",
    "render_utterance",
    "speaker_of_style",
    "synthesize_dataset",
]

_WORD_GAP_S = 0.08  # pause between two adjacent spoken items in render_utterance


def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """White or pink (1/f) noise with unit RMS: hiss and rumble-like backgrounds."""
    white = rng.standard_normal(n)
    if rng.random() < 0.5 or n < 4:
        noise = white
    else:
        spectrum = np.fft.rfft(white)
        freqs = np.arange(len(spectrum), dtype=np.float64)
        freqs[0] = 1.0
        noise = np.fft.irfft(spectrum / np.sqrt(freqs), n=n)
    rms = np.sqrt(np.mean(noise**2))
    return noise / rms if rms > 0 else noise


def _add_noise(
    audio: np.ndarray, speech_power: float, snr_db: float, rng: np.random.Generator
) -> np.ndarray:
    noise = _noise(rng, len(audio)) * math.sqrt(speech_power / 10 ** (snr_db / 10))
    return audio + noise


def make_clip(
    word: str,
    rng: np.random.Generator,
    clip_seconds: float = 1.0,
    noise_prob: float = 0.8,
    snr_db: tuple[float, float] = (5.0, 30.0),
    style: VoiceStyle | None = None,
) -> np.ndarray:
    """One training clip: ``word`` in a random style and gain, at a random offset, maybe noisy.

    The result is float32 at 16 kHz, exactly ``clip_seconds`` long. Speech that would not fit
    is re-synthesised faster (a short word said fast beats a cut-off word); only if that is not
    enough is it trimmed, with a short fade-out.
    """
    n = round(clip_seconds * SAMPLE_RATE)
    if n <= 0:
        raise ValueError(f"clip_seconds must be positive, got {clip_seconds}")
    if not 0.0 <= noise_prob <= 1.0:
        raise ValueError(f"noise_prob must be in [0, 1], got {noise_prob}")
    style = style or random_style(rng)
    speech = speak(word, style)
    fit = int(n * 0.9)  # leave a little room so the word is not glued to the clip edge
    for _ in range(2):
        if len(speech) <= fit or style.speed_wpm >= MAX_WPM:
            break
        faster = min(MAX_WPM, math.ceil(style.speed_wpm * len(speech) / fit * 1.05))
        style = replace(style, speed_wpm=faster)
        speech = speak(word, style)
    if len(speech) > n:
        speech = speech[:n].copy()
        fade = min(len(speech), SAMPLE_RATE // 100)
        speech[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)

    peak = float(np.max(np.abs(speech)))
    gain_db = rng.uniform(-18.0, -1.0)  # speakers near and far from the microphone
    speech = speech * (10 ** (gain_db / 20) / peak)
    offset = int(rng.integers(0, n - len(speech) + 1))
    clip = np.zeros(n, dtype=np.float64)
    clip[offset : offset + len(speech)] = speech
    if rng.random() < noise_prob:
        lo, hi = snr_db
        snr = rng.uniform(min(lo, hi), max(lo, hi))
        clip = _add_noise(clip, float(np.mean(speech.astype(np.float64) ** 2)), snr, rng)
    return np.clip(clip, -1.0, 1.0).astype(np.float32)


def speaker_of_style(style: VoiceStyle) -> str:
    """A synthetic speaker: the voice and variant, pitch in bands of 20 and speed in bands of
    40 wpm. Datasets split by speaker, so one such voice never lands in two splits. No "_" in
    it, so file names ``<speaker>_nohash_<k>.wav`` parse as Speech Commands names do."""
    voice = style.voice.replace("_", "-")
    return f"{voice}-p{style.pitch // 20}-s{style.speed_wpm // 40}"


def _folder_name(word: str) -> str:
    name = word.strip().replace(" ", "_")
    if not name or name in {".", ".."} or "/" in name or "\\" in name:
        raise ValueError(f"cannot use {word!r} as a keyword folder name")
    return name


def phrase_clip_seconds(word: str, minimum: float = 1.0) -> float:
    """A clip length that holds ``word`` said at the slowest pace the styles draw
    (:func:`speed_range`) within 90 % of the clip, in whole tenths of a second and at least
    ``minimum``: a phrase keeps its natural duration instead of being squeezed into 1 s."""
    slowest = spoken_seconds(word, speed_range()[0])
    return max(minimum, math.ceil(slowest / 0.9 * 10) / 10)


def synthesize_dataset(
    words: Sequence[str],
    out_dir: Path,
    clips_per_word: int | Mapping[str, int],
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    clip_seconds: float | None = 1.0,
) -> dict[str, int]:
    """Write ``out_dir/<word>/<speaker>_nohash_<k:04d>.wav`` (16 kHz, PCM_16) for every
    word; the speaker is :func:`speaker_of_style` of the clip's voice.

    ``clips_per_word``: one count for all words, or a count per word. ``clip_seconds``: the
    clip length (1 s, Speech Commands' own, by default: longer speech is said faster to
    fit), or None to follow each phrase (:func:`phrase_clip_seconds`). Spaces in a word
    become "_" in folder and file names. Each clip has its own generator seeded from (seed,
    word index, k), so the same seed gives byte-identical files whatever order or subset is
    generated. Speakers (voice, variant, pitch and speed bands) are what datasets split by, so
    a voice drawn again by another seed lands in the same split. ``progress(done, total)`` is
    called after each file.
    """
    counts_for = (dict(clips_per_word) if isinstance(clips_per_word, Mapping)
                  else dict.fromkeys(words, clips_per_word))
    missing = [w for w in words if w not in counts_for]
    if missing:
        raise ValueError(f"no clip count for {missing!r}")
    if any(c < 0 for c in counts_for.values()):
        raise ValueError(f"clip counts must be >= 0, got {counts_for}")
    if clip_seconds is not None and clip_seconds <= 0:
        raise ValueError(f"clip_seconds must be positive, got {clip_seconds}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    names = [_folder_name(word) for word in words]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate keywords in {list(words)!r}")
    out_dir = Path(out_dir)
    total = sum(counts_for[w] for w in words)
    done = 0
    counts: dict[str, int] = {}
    for word_index, (word, name) in enumerate(zip(words, names, strict=True)):
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        seconds = clip_seconds or phrase_clip_seconds(word.strip())
        for k in range(counts_for[word]):
            rng = np.random.default_rng([seed, word_index, k])
            style = random_style(rng)
            clip = make_clip(word.strip(), rng, clip_seconds=seconds, style=style)
            target = folder / f"{speaker_of_style(style)}_nohash_{k:04d}.wav"
            for old in folder.glob(f"*_nohash_{k:04d}.wav"):  # clip k of an earlier seed
                if old != target:
                    old.unlink()
            save_audio(target, clip, SAMPLE_RATE)
            done += 1
            if progress is not None:
                progress(done, total)
        counts[word] = counts_for[word]
    return counts


def render_utterance(
    segments: Sequence[str | float],
    rng: np.random.Generator,
    style: VoiceStyle | None = None,
    noise_snr_db: float | None = 20.0,
) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """A long recording with known word times, to test streaming detection against truth.

    ``str`` items are spoken (one voice for the whole recording), numbers are seconds of
    silence; two spoken items in a row get a short natural pause. Returns the float32 16 kHz
    audio and ``(word, start_s, end_s)`` for every spoken item, exact to the sample. With
    ``noise_snr_db`` set, noise at that SNR (relative to the speech) covers the whole recording.
    """
    if style is None:
        style = random_style(rng)
    pieces: list[np.ndarray] = []
    spans: list[tuple[str, int, int]] = []
    cursor = 0
    previous_spoken = False
    for segment in segments:
        if isinstance(segment, str):
            if previous_spoken:
                gap = np.zeros(round(_WORD_GAP_S * SAMPLE_RATE), dtype=np.float32)
                pieces.append(gap)
                cursor += len(gap)
            speech = speak(segment, style)
            pieces.append(speech)
            spans.append((segment, cursor, cursor + len(speech)))
            cursor += len(speech)
            previous_spoken = True
        elif isinstance(segment, int | float) and not isinstance(segment, bool):
            if segment < 0 or not math.isfinite(segment):
                raise ValueError(f"silence must be a finite number of seconds >= 0: {segment}")
            silence = np.zeros(round(float(segment) * SAMPLE_RATE), dtype=np.float32)
            pieces.append(silence)
            cursor += len(silence)
            previous_spoken = False
        else:
            raise TypeError(f"segments must be str (speech) or float (silence), got {segment!r}")
    audio = np.concatenate(pieces).astype(np.float64) if pieces else np.zeros(0)
    if noise_snr_db is not None and len(audio):
        spoken = [audio[start:end] for _, start, end in spans]
        power = float(np.mean(np.concatenate(spoken) ** 2)) if spoken else 1e-4
        audio = _add_noise(audio, power, noise_snr_db, rng)
    times = [(word, start / SAMPLE_RATE, end / SAMPLE_RATE) for word, start, end in spans]
    return np.clip(audio, -1.0, 1.0).astype(np.float32), times
