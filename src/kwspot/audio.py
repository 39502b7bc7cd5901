"""Reading audio from disk into the one format every stage uses: mono float32 at 16 kHz."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import soundfile as sf
import soxr

from kwspot.errors import AudioError

SAMPLE_RATE = 16000


def resample(audio: np.ndarray, from_rate: int, to_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited (soxr, high quality) resampling; a no-op when the rates match."""
    if from_rate == to_rate:
        return audio.astype(np.float32, copy=False)
    return soxr.resample(audio, from_rate, to_rate, quality="HQ").astype(np.float32)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average channels: stereo phone recordings should count as one voice, not two."""
    if audio.ndim == 1:
        return audio
    return audio.mean(axis=1)


def _finite_mono(audio: np.ndarray, path: Path) -> np.ndarray:
    """Decoded samples -> mono, refusing NaN/inf (float files can hold them)."""
    audio = to_mono(audio[:, 0] if audio.ndim == 2 and audio.shape[1] == 1 else audio)
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"{path}: contains NaN or infinite samples")
    return audio


def _check_file(path: Path) -> None:
    """One true line for each way a path can fail to be a readable audio file."""
    try:
        info = path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AudioError(f"{path}: symbolic link loop") from None
        if exc.errno == errno.EACCES:
            raise AudioError(f"{path}: permission denied") from None
        raise AudioError(f"{path}: no such file") from None
    if stat.S_ISDIR(info.st_mode):
        raise AudioError(f"{path}: is a directory, not an audio file")
    if not stat.S_ISREG(info.st_mode):
        raise AudioError(f"{path}: not a regular file (a pipe, socket or device); "
                         "for standard input use '-'")
    if not os.access(path, os.R_OK):
        raise AudioError(f"{path}: permission denied")
    if info.st_size == 0:
        raise AudioError(f"{path}: file is empty")


MIN_RATE, MAX_RATE = 4000, 384_000
MAX_SAMPLES_PER_BYTE = 2000  # FLAC of digital silence packs ~1000 samples a byte; more is a lie


def _check_header(path: Path) -> None:
    """Refuse headers that would make the decoder allocate absurd amounts: a rate below 4 kHz
    or above 384 kHz, or more samples than the file could hold."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        return  # the decoder gives the clear error
    if not MIN_RATE <= info.samplerate <= MAX_RATE:
        raise AudioError(f"{path}: sample rate {info.samplerate} Hz is outside "
                         f"{MIN_RATE}-{MAX_RATE} Hz; not a usable recording")
    samples = info.frames * info.channels
    if samples > max(16_000_000, MAX_SAMPLES_PER_BYTE * path.stat().st_size):
        raise AudioError(f"{path}: header claims {info.frames} frames, more than a "
                         f"{path.stat().st_size}-byte file can hold")


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode WAV/FLAC/OGG (int or float PCM, any rate, any channel count) to mono float32.

    Every failure is an AudioError that names the file, so a dataset scan can report it and go on.
    """
    path = Path(path)
    _check_file(path)
    _check_header(path)
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(f"{path}: cannot decode audio ({exc})") from exc
    if audio.size == 0:
        raise AudioError(f"{path}: contains no samples")
    audio = _finite_mono(audio, path)
    audio = resample(audio, rate, sample_rate)
    if audio.size == 0:
        raise AudioError(f"{path}: too short to hold one sample at {sample_rate} Hz")
    # float files may exceed full scale; the models are trained on [-1, 1]
    return np.clip(audio, -1.0, 1.0)


def fit_length(audio: np.ndarray, num_samples: int) -> np.ndarray:
    """Zero-pad or centre-crop to a fixed length, as the classifier sees exactly one window."""
    if len(audio) == num_samples:
        return audio
    if len(audio) < num_samples:
        return np.pad(audio, (0, num_samples - len(audio)))
    start = (len(audio) - num_samples) // 2
    return audio[start : start + num_samples]


def save_audio(path: str | Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write 16-bit PCM WAV, the format of Speech Commands and of every tool downstream."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16")


def iter_audio_blocks(path: str | Path | BinaryIO, sample_rate: int = SAMPLE_RATE,
                      block_seconds: float = 10.0) -> Iterator[np.ndarray]:
    """Decode a file of any length block by block (mono float32 at ``sample_rate``), so memory
    stays flat for hours of audio. The blocks joined equal ``load_audio`` to resampler
    rounding (soxr's streaming resampler). ``path`` may be an open binary file (stdin)."""
    if isinstance(path, str | Path):
        path = Path(path)
        _check_file(path)
        source: Any = str(path)
    else:
        source, path = path, Path("<stdin>")
    try:
        handle = sf.SoundFile(source)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(f"{path}: cannot decode audio ({exc})") from exc
    with handle:
        rate = handle.samplerate
        if not MIN_RATE <= rate <= MAX_RATE:
            raise AudioError(f"{path}: sample rate {rate} Hz is outside {MIN_RATE}-{MAX_RATE} "
                             "Hz; not a usable recording")
        resampler = None if rate == sample_rate else soxr.ResampleStream(
            rate, sample_rate, 1, dtype="float32", quality="HQ")
        block = max(1, round(block_seconds * rate))
        total = 0
        while True:
            try:
                data = handle.read(block, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise AudioError(f"{path}: cannot decode audio ({exc})") from exc
            last = len(data) < block
            audio = _finite_mono(data, path)
            total += len(audio)
            if resampler is not None:
                audio = resampler.resample_chunk(audio, last=last)
            if len(audio):
                yield np.clip(audio, -1.0, 1.0).astype(np.float32, copy=False)
            if last:
                break
        if total == 0:
            raise AudioError(f"{path}: contains no samples")
