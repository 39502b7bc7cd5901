"""Training windows for a wake phrase, all 1.98 s (the model's window):

- positives: the phrase said by eSpeak NG voices (accent, variant, pitch, speed), and where
  installed by Piper, Kokoro and CMU Flite voices (``piper_share``, ``kokoro_share``,
  ``flite_share``, each a share of what the ones before left), then a
  tape-speed change of 0.85-1.15, its end placed late in the window as the detector sees it
  when it fires;
- real recordings of the phrase where the user has some (``recordings``): each gives
  ``RECORDING_COPIES`` windows, the speech cut from its silence, each copy with its own
  tape speed, place and augmentation;
- negatives: sound-alikes made from the phrase's phonemes, everyday sentences without the
  phrase's words, real speech and noise from the user's folders, and plain noise;
- every window augmented: gain, room reverb, microphone colouring (EQ) and noise at an SNR.

Synthetic speakers follow ``negatives.voice_split`` (by voice variant), user files split by
their speaker (Speech Commands / FSDD names) or file (recordings too, except that when every
recording's speaker would be held out they all train: a user's few recordings must teach),
so validation voices and files are never trained on. Everything is drawn from seeded
generators: the same call gives the same windows.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.signal

from kwspot.audio import load_audio
from kwspot.datasets.espeak import (
    SAMPLE_RATE,
    SynthesisError,
    VoiceStyle,
    available_voices,
    random_style,
    speak,
)
from kwspot.datasets.folder import audio_files_under, guess_speaker, split_for_speaker
from kwspot.datasets.negatives import FSDD_NAME, keyword_free_vocabulary, voice_split
from kwspot.datasets.streams import change_speed, speech_bounds
from kwspot.datasets.voices import SYNTHESIZERS, share, speak_as
from kwspot.errors import AudioError, KwspotError
from kwspot.wakeword.model import WINDOW_SAMPLES
from kwspot.wakeword.soundalikes import sound_alikes

SPLITS = ("train", "validation")
FIT = 0.95  # the share of the window a positive may fill: a cut phrase is not the phrase
HOLDOUT_PCT = 20.0  # of voices / user speakers held out for validation and calibration
RECORDING_COPIES = 20  # augmented windows from each real recording of the phrase


@dataclass(frozen=True)
class WindowSet:
    audio: np.ndarray  # (N, WINDOW_SAMPLES) float32
    labels: np.ndarray  # (N,) 1 = the phrase
    kinds: list[str]  # what each window holds: positive, soundalike, sentence, user, noise
    splits: list[str]
    speakers: list[str]  # the eSpeak voice, the user file's speaker, or "noise"


def split_of(name: str) -> str:
    """train or validation for a speaker / voice / file name (stable hash)."""
    return split_for_speaker(name, HOLDOUT_PCT, 0.0)


def _style(rng: np.random.Generator, split: str, voices: Sequence[str]) -> VoiceStyle:
    """A random style in a voice of ``split`` only: test voices (``negatives.voice_split``)
    are never used, so test streams built from them stay unseen."""
    pool = [v for v in voices if voice_split(v) == split]
    style = random_style(rng)
    return replace(style, voice=pool[int(rng.integers(len(pool)))])


def fit_positive(speech: np.ndarray) -> np.ndarray:
    """A long phrase said slowly, sped up to fit ``FIT`` of the window: a cut phrase is not
    the phrase, and the detector would learn to fire on part of it."""
    if len(speech) <= FIT * WINDOW_SAMPLES:
        return speech
    return change_speed(speech, len(speech) / (FIT * WINDOW_SAMPLES))


def place(speech: np.ndarray, rng: np.random.Generator, late: bool) -> np.ndarray:
    """Speech in a window: ending in the last 0.6 s (as when the detector fires) when
    ``late``, anywhere otherwise; cut to the window when longer."""
    n = WINDOW_SAMPLES
    window = np.zeros(n, np.float32)
    if len(speech) >= n:
        start = int(rng.integers(0, len(speech) - n + 1))
        return speech[start : start + n].astype(np.float32)
    if late:
        end = n - int(rng.integers(0, min(n - len(speech), round(0.6 * SAMPLE_RATE)) + 1))
    else:
        end = int(rng.integers(len(speech), n + 1))
    window[end - len(speech) : end] = speech
    return window


def _colored_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """White, pink or brown noise, unit RMS."""
    white = rng.standard_normal(n)
    slope = float(rng.choice([0.0, 0.5, 1.0]))
    if slope:
        spectrum = np.fft.rfft(white)
        freqs = np.maximum(np.arange(len(spectrum)), 1.0)
        white = np.fft.irfft(spectrum / freqs**slope, n=n)
    return (white / max(float(np.sqrt(np.mean(white**2))), 1e-12)).astype(np.float32)


def room_impulse(rng: np.random.Generator) -> np.ndarray:
    """A synthetic room: exponentially decaying noise with RT60 0.15-0.8 s after a direct
    path, so the model hears speech at a distance in a room."""
    rt60 = rng.uniform(0.15, 0.8)
    n = int(rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    delay = int(rng.uniform(0.002, 0.02) * SAMPLE_RATE)
    ir = np.zeros(n + delay)
    ir[0] = 1.0
    ir[delay:] += tail * rng.uniform(0.05, 0.4) / math.sqrt(n)
    return ir / np.sqrt(np.sum(ir**2))


def microphone(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Microphone and loudspeaker colouring: a high-pass, a low-pass and one peak or dip."""
    hp = rng.uniform(40, 300)
    lp = rng.uniform(3500, 7900)
    sos = [scipy.signal.butter(2, hp, "highpass", fs=SAMPLE_RATE, output="sos"),
           scipy.signal.butter(2, lp, "lowpass", fs=SAMPLE_RATE, output="sos")]
    b, a = scipy.signal.iirpeak(rng.uniform(300, 3000), rng.uniform(0.7, 3.0), fs=SAMPLE_RATE)
    out = scipy.signal.sosfilt(np.concatenate(sos), audio)
    peak = scipy.signal.lfilter(b, a, out)
    return out + rng.uniform(-0.5, 0.8) * peak


def augment(window: np.ndarray, rng: np.random.Generator,
            noises: Sequence[np.ndarray] = (), snr_db: tuple[float, float] = (0.0, 25.0)
            ) -> np.ndarray:
    """Reverb (60 %), EQ (70 %), noise at an SNR (85 %: the user's noise files, else coloured
    noise) and a level from -35 to -3 dBFS peak."""
    x = window.astype(np.float64)
    if rng.random() < 0.6:
        x = scipy.signal.fftconvolve(x, room_impulse(rng))[: len(x)]
    if rng.random() < 0.7:
        x = microphone(x, rng)
    power = float(np.mean(x**2))
    if rng.random() < 0.85 and power > 0:
        if noises and rng.random() < 0.7:
            source = noises[int(rng.integers(len(noises)))]
            start = int(rng.integers(0, max(1, len(source) - len(x))))
            noise = np.resize(source[start : start + len(x)], len(x)).astype(np.float64)
            noise /= max(float(np.sqrt(np.mean(noise**2))), 1e-12)
        else:
            noise = _colored_noise(rng, len(x)).astype(np.float64)
        snr = rng.uniform(*snr_db)
        x = x + noise * math.sqrt(power / 10 ** (snr / 10))
    peak = float(np.max(np.abs(x)))
    if peak > 0:
        x *= 10 ** (rng.uniform(-35, -3) / 20) / peak
    return x.astype(np.float32)


def audio_files(folders: Sequence[str | Path], speech: bool = True,
                what: str | None = None) -> list[Path]:
    """Audio files under ``--negatives`` or ``--recordings`` (speech; a
    ``_background_noise_`` folder inside is skipped) or ``--noise`` folders."""
    what = what or ("--negatives" if speech else "--noise")
    return [f for folder in folders for f in audio_files_under(folder, what, speech)]


def recording_splits(files: Sequence[Path]) -> dict[Path, str]:
    """Each recording's split by its speaker, as user files; but when every speaker would be
    held out, all train (one speaker's own few recordings must teach the model)."""
    splits = {f: split_of(speaker_of_file(f)) for f in files}
    if files and all(split == "validation" for split in splits.values()):
        return dict.fromkeys(files, "train")
    return splits


def speaker_of_file(path: Path) -> str:
    """Speech Commands names (``[<word>_]<speaker>_nohash_<n>``) and FSDD names
    (``<digit>_<speaker>_<n>``) give the speaker; any other file is its own."""
    match = FSDD_NAME.match(path.name)
    return match.group("speaker") if match else guess_speaker(path)


def _excluded(path: Path, phrase_words: set[str]) -> bool:
    """A user file whose folder name or any token of its name is one of the phrase's words
    (``marvin/x.wav``, ``_unknown_/marvin_<spk>_nohash_0.wav``): it may say the phrase."""
    tokens = {path.parent.name.lower(), *re.split(r"[^a-z0-9]+", path.stem.lower())}
    return bool(tokens & phrase_words)


@dataclass(frozen=True)
class DataConfig:
    phrase: str
    positives: int = 2000
    soundalikes: int = 60  # distinct edits, each said by several voices
    soundalike_clips: int = 300  # more taught the model eSpeak's exact rendering (soundalikes.py)
    sentences: int = 900
    user_windows: int = 3000  # windows cut from --negatives speech
    noise_windows: int = 300
    seed: int = 0
    # share of positives and sentences said by Flite voices (datasets.flite) where the
    # flite program is installed; 0: eSpeak NG only
    flite_share: float = 0.0
    # share said by Piper's neural voices (datasets.piper) where kwspot[voices] or
    # KWSPOT_PIPER_VOICES provides them; drawn before Flite, training windows only (one
    # bundled voice leaves none to hold out); 0: none
    piper_share: float = 0.0
    # share said by Kokoro's neural voices (datasets.kokoro) where kwspot[voices] installs
    # them, drawn after Piper; jf_tebukuro in validation, the others and blends in training
    kokoro_share: float = 0.0


def build_windows(cfg: DataConfig, negatives: Sequence[str | Path] = (),
                  noise_dirs: Sequence[str | Path] = (),
                  progress: Callable[[str, int, int], None] | None = None,
                  only: str | None = None,
                  recordings: Sequence[str | Path] = (),
                  recording_copies: int = RECORDING_COPIES) -> WindowSet:
    """Every training and validation window for ``cfg.phrase`` (see the module docstring);
    with ``only``, just that split's windows (the others are not even synthesized).
    ``recording_copies`` augmented windows are cut from each real recording: many to train
    on, one where each recording should count once (the calibration streams)."""
    if recording_copies < 1:
        raise ValueError(f"recording_copies must be >= 1, got {recording_copies}")
    phrase = " ".join(cfg.phrase.split())
    words = {w.lower() for w in phrase.split()}
    voices = available_voices()
    if not any(voice_split(v) == "validation" for v in voices):
        raise KwspotError("eSpeak NG has no held-out voices for validation")
    noises = [load_audio(p) for p in audio_files(noise_dirs, speech=False)] \
        if noise_dirs else []
    # checked before minutes of synthesis, not after
    files = [f for f in audio_files(negatives) if not _excluded(f, words)] if negatives else []
    takes = recording_splits(audio_files(recordings, what="--recordings")) if recordings else {}
    out_audio: list[np.ndarray] = []
    labels: list[int] = []
    kinds: list[str] = []
    splits: list[str] = []
    speakers: list[str] = []

    def wanted(split: str) -> bool:
        return only is None or split == only

    def add(window: np.ndarray, label: int, kind: str, split: str, speaker: str,
            rng: np.random.Generator) -> None:
        out_audio.append(augment(window, rng, noises))
        labels.append(label)
        kinds.append(kind)
        splits.append(split)
        speakers.append(speaker)

    def report(kind: str, done: int, total: int) -> None:
        if progress is not None and (done == total or done % 200 == 0):
            progress(kind, done, total)

    # the other synthesizers (datasets.voices), each drawn in turn on its own generator (so
    # a share of 0 or a missing synthesizer leaves every later draw as it was)
    pools = {synth.name: {split: synth.voices_for(split) for split in SPLITS}
             if share(cfg, synth) > 0 else {} for synth in SYNTHESIZERS}

    def other_style(kind: int, k: int, split: str) -> Any:
        """A style of another synthesizer for item k, or None for eSpeak."""
        for synth in SYNTHESIZERS:
            draw = np.random.default_rng([cfg.seed, synth.tag, kind, k])
            pool = pools[synth.name].get(split)
            if pool and draw.random() < share(cfg, synth):
                return synth.random_style(draw, pool)
        return None

    def say(text: str, style: VoiceStyle, other: Any) -> np.ndarray:
        return speak(text, style) if other is None else speak_as(text, other)

    for k in range(cfg.positives):
        rng = np.random.default_rng([cfg.seed, 1, k])
        split = "validation" if k % 5 == 0 else "train"
        if not wanted(split):
            continue
        style = _style(rng, split, voices)
        other = other_style(1, k, split)
        speech = say(phrase, style, other)
        if rng.random() < 0.7:  # tape-speed change: tempo and pitch together
            speech = change_speed(speech, float(rng.uniform(0.85, 1.15)))
        speech = fit_positive(speech)
        add(place(_gain(speech, rng), rng, late=True), 1, "positive", split,
            style.voice if other is None else other.speaker, rng)
        report("positives", k + 1, cfg.positives)

    for n, (path, split) in enumerate(takes.items()):
        if not wanted(split):
            continue
        try:
            audio = load_audio(path)
        except AudioError as exc:  # a recording of the phrase is too precious to skip
            raise KwspotError(f"--recordings: {exc}") from exc
        start, end = speech_bounds(audio)
        for copy in range(recording_copies):  # seeded by the file's name: stable as files come
            rng = np.random.default_rng([cfg.seed, 6, zlib.crc32(path.name.encode()), copy])
            speech = audio[start:end]
            if rng.random() < 0.7:
                speech = change_speed(speech, float(rng.uniform(0.9, 1.1)))
            add(place(_gain(fit_positive(speech), rng), rng, late=True), 1, "recording",
                split, speaker_of_file(path), rng)
        report("recordings", n + 1, len(takes))

    alikes = sound_alikes(phrase, cfg.soundalikes, cfg.seed)
    for k in range(cfg.soundalike_clips if alikes else 0):
        rng = np.random.default_rng([cfg.seed, 2, k])
        split = "validation" if k % 5 == 0 else "train"
        if not wanted(split):
            continue
        style = _style(rng, split, voices)
        try:
            speech = speak(alikes[k % len(alikes)], style)
        except SynthesisError:
            continue
        add(place(_gain(speech, rng), rng, late=rng.random() < 0.7), 0, "soundalike", split,
            style.voice, rng)
        report("sound-alikes", k + 1, cfg.soundalike_clips)

    vocabulary = {s: keyword_free_vocabulary(sorted(words), s) for s in SPLITS}
    for k in range(cfg.sentences):
        rng = np.random.default_rng([cfg.seed, 3, k])
        split = "validation" if k % 5 == 0 else "train"
        if not wanted(split):
            continue
        pool = vocabulary[split]
        text = " ".join(pool[i] for i in rng.integers(len(pool), size=int(rng.integers(3, 9))))
        style = _style(rng, split, voices)
        other = other_style(3, k, split)  # other voices say other things: not a cue
        speech = say(text, style, other)
        add(place(_gain(speech, rng), rng, late=False), 0, "sentence", split,
            style.voice if other is None else other.speaker, rng)
        report("sentences", k + 1, cfg.sentences)

    if files:
        rng = np.random.default_rng([cfg.seed, 4])
        order = rng.permutation(len(files))
        made, unreadable = 0, []
        for i in order[: cfg.user_windows]:
            path = files[int(i)]
            split = split_of(speaker_of_file(path))
            if not wanted(split):
                continue
            try:
                audio = load_audio(path)
            except AudioError as exc:
                unreadable.append(str(exc))
                continue
            add(place(audio, rng, late=rng.random() < 0.5), 0, "user", split,
                speaker_of_file(path), rng)
            made += 1
            report("negative files", made, min(cfg.user_windows, len(files)))
        if unreadable and not made:
            raise KwspotError(f"--negatives: none of the {len(unreadable)} audio files tried "
                              f"could be read (first: {unreadable[0]})")
        if unreadable and progress is not None:
            progress("unreadable negative files skipped", len(unreadable),
                     made + len(unreadable))
    for k in range(cfg.noise_windows):
        rng = np.random.default_rng([cfg.seed, 5, k])
        split = "validation" if k % 5 == 0 else "train"
        if wanted(split):
            add(np.zeros(WINDOW_SAMPLES, np.float32), 0, "noise", split, "noise", rng)
    if not out_audio:
        return WindowSet(np.zeros((0, WINDOW_SAMPLES), np.float32), np.zeros(0, np.int64),
                         [], [], [])
    return WindowSet(np.stack(out_audio), np.array(labels, np.int64), kinds, splits, speakers)


def _gain(speech: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    peak = float(np.max(np.abs(speech))) or 1.0
    return (speech / peak * 10 ** (rng.uniform(-6, 0) / 20)).astype(np.float32)


__all__ = ["RECORDING_COPIES", "DataConfig", "WindowSet", "augment", "build_windows", "place",
           "recording_splits", "room_impulse", "split_of"]
