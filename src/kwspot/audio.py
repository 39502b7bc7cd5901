"""Reading audio from disk into the one format every stage uses: mono float32 at 16 kHz."""

from __future__ import annotations

import errno
import io
import os
import re
import stat
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import soundfile as sf
import soxr

from kwspot.errors import AudioError
from kwspot.fileio import atomic_path

SAMPLE_RATE = 16000

#: What every dataset scan and ``kwspot detect`` decode (libsndfile >= 1.1 reads MP3).
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".mp3"})


class AudioWarning(UserWarning):
    """Audio that decodes, but not all of it: e.g. a WAV cut off before its declared end."""


_STDERR_LOCK = threading.Lock()


def _head(path: Path) -> bytes:
    """The first bytes of a file: enough to tell MP3 from RIFF/WAVE without decoding."""
    try:
        with path.open("rb") as fh:
            return fh.read(12)
    except OSError:
        return b""


def _is_mp3(path: Path, head: bytes) -> bool:
    return path.suffix.lower() == ".mp3" or head[:3] == b"ID3" or (
        len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


@contextmanager
def _quiet_decoder(active: bool) -> Iterator[None]:
    """libmpg123 (libsndfile's MP3 decoder) prints multi-line notes straight to file
    descriptor 2 ("Trying to resync..."); swallow them while MP3 input (``active``) decodes,
    so a bad file gives kwspot's one line, not decoder chatter. Other formats: untouched."""
    if not active:
        yield
        return
    with _STDERR_LOCK, tempfile.TemporaryFile() as sink:
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all: nothing to silence
            yield
            return
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _decode_error(path: Path, exc: Exception) -> AudioError:
    """libsndfile says "File does not exist or is not a regular file" for any file it cannot
    open; by now the file is known to exist, so say what is really wrong."""
    # an open file object's repr ("Error opening <_io.BytesIO object at 0x..>:") says nothing
    text = re.sub(r"^Error opening <[^>]*>: ?", "", str(exc))
    if "does not exist" in text or "not a regular file" in text:
        return AudioError(f"{path}: not a decodable audio file (unknown format or corrupt)")
    return AudioError(f"{path}: cannot decode audio ({text.splitlines()[0] if text else exc})")


def _wav_truncation(path: Path, head: bytes) -> str | None:
    """For a RIFF/WAVE file: how its data chunk falls short of what the header declares
    (a copy or download cut off), or None. libsndfile then reads what is there, silently."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None  # not a WAV: no file opened at all
    try:
        with path.open("rb") as fh:
            fh.seek(12)
            block_align = 0
            while True:
                chunk = fh.read(8)
                if len(chunk) < 8:
                    return None
                kind, size = chunk[:4], int.from_bytes(chunk[4:], "little")
                if kind == b"fmt ":
                    fmt = fh.read(size)
                    block_align = int.from_bytes(fmt[12:14], "little") if len(fmt) >= 14 else 0
                    fh.seek(size % 2, os.SEEK_CUR)
                elif kind == b"data":
                    available = path.stat().st_size - fh.tell()
                    break
                else:
                    fh.seek(size + size % 2, os.SEEK_CUR)
    except OSError:
        return None
    streaming = size in (0, 0xFFFFFFFF)  # writers that never went back to fill in the size
    if not streaming and available < size:
        return (f"{path}: truncated: the header declares {size} bytes of audio but the file "
                f"holds {available}; decoding what is there")
    if block_align and available % block_align and (streaming or available <= size):
        return (f"{path}: truncated mid-sample ({available % block_align} stray bytes at the "
                "end); decoding what is there")
    return None


def _warn_if_truncated(path: Path, head: bytes) -> None:
    message = _wav_truncation(path, head)
    if message:
        warnings.warn(message, AudioWarning, stacklevel=3)


def resample(audio: np.ndarray, from_rate: int, to_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited (soxr, high quality) resampling; a no-op when the rates match."""
    if from_rate == to_rate:
        return audio.astype(np.float32, copy=False)
    return soxr.resample(audio, from_rate, to_rate, quality="HQ").astype(np.float32)


class StreamResampler:
    """Resampling of one signal that arrives in pieces (soxr, high quality, state kept between
    chunks), clipped to [-1, 1]: a band-limited resampler overshoots on full-scale audio (a
    clipped microphone), and the detector refuses samples outside the range. Used by file
    decoding (``iter_audio_blocks``) and by the server's streams."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        self.stream = soxr.ResampleStream(from_rate, to_rate, 1, dtype="float32", quality="HQ")

    def __call__(self, audio: np.ndarray, last: bool = False) -> np.ndarray:
        out = self.stream.resample_chunk(audio, last=last)
        return np.clip(out, -1.0, 1.0).astype(np.float32, copy=False)


def stream_resampler(from_rate: int, to_rate: int) -> StreamResampler | None:
    """A ``StreamResampler``, or None when the rates already match."""
    return None if from_rate == to_rate else StreamResampler(from_rate, to_rate)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average channels: stereo phone recordings should count as one voice, not two."""
    if audio.ndim == 1:
        return audio
    return audio.mean(axis=1)


def _finite_mono(audio: np.ndarray, path: Path) -> np.ndarray:
    """Decoded samples -> mono, refusing NaN/inf (float files can hold them)."""
    audio = to_mono(audio[:, 0] if audio.ndim == 2 and audio.shape[1] == 1 else audio)
    if not np.all(np.isfinite(audio)):
        raise _non_finite_error(path)
    return audio


def _non_finite_error(path: Path) -> AudioError:
    """NaN/inf in float32 may be true NaN/inf, or float64 samples too large for float32
    (e.g. 1e300): say which, so the user knows the file is not merely 'loud'."""
    try:
        largest = 0.0
        for block in sf.blocks(str(path), blocksize=1 << 20, dtype="float64"):
            if not np.all(np.isfinite(block)):
                break
            largest = max(largest, float(np.max(np.abs(block), initial=0.0)))
        else:
            return AudioError(f"{path}: samples overflow 32-bit float (largest magnitude "
                              f"{largest:.3g}); not usable audio")
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError):
        pass
    return AudioError(f"{path}: contains NaN or infinite samples")


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
    """Decode WAV/FLAC/OGG/MP3 (int or float PCM, any rate, any channel count) to mono float32.

    A WAV cut off before its declared end still loads, with an :class:`AudioWarning` naming
    the file. Every failure is an AudioError that names the file, so a dataset scan can report
    it and go on.
    """
    path = Path(path)
    _check_file(path)
    head = _head(path)
    with _quiet_decoder(_is_mp3(path, head)):
        _check_header(path)
        try:
            audio, rate = sf.read(str(path), dtype="float32", always_2d=False)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
            raise _decode_error(path, exc) from exc
    if audio.size == 0:
        raise AudioError(f"{path}: contains no samples")
    _warn_if_truncated(path, head)
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
    """Write 16-bit PCM WAV, the format of Speech Commands and of every tool downstream
    (atomically: a kill mid-write leaves no half file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16",
                 format=(path.suffix.lstrip(".") or "wav").upper())


def _read_up_to(fd: int, n: int) -> bytes:
    data = b""
    while len(data) < n:
        more = os.read(fd, n - len(data))
        if not more:
            break
        data += more
    return data


def _pipe_source(stream: BinaryIO) -> tuple[Any, bytes]:
    """A non-seekable input (a pipe on stdin): WAV is decoded as its bytes arrive, so a live
    recorder's stream stays live (libsndfile reads a WAV header without seeking, from a file
    descriptor; the header bytes read here to tell the format are replayed into a fresh pipe
    by a thread). Any other format (FLAC, MP3, ...) needs seeking, so it is read whole into
    memory first, as a file would be."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # a file-like object with no descriptor
        data = stream.read()
        return io.BytesIO(data), data[:12]
    head = _read_up_to(fd, 12)
    if not head:
        raise AudioError("<stdin>: no audio arrived (the input is empty)")
    if head[:4] not in (b"RIFF", b"RF64"):
        rest = []
        while chunk := os.read(fd, 1 << 20):
            rest.append(chunk)
        return io.BytesIO(head + b"".join(rest)), head
    read_end, write_end = os.pipe()

    def relay() -> None:
        try:
            os.write(write_end, head)
            while chunk := os.read(fd, 1 << 16):
                os.write(write_end, chunk)
        except OSError:  # the reader is gone (an error upstream): stop quietly
            pass
        finally:
            os.close(write_end)

    threading.Thread(target=relay, daemon=True, name="kwspot-stdin").start()
    return read_end, head  # libsndfile closes it with the SoundFile


def iter_audio_blocks(path: str | Path | BinaryIO, sample_rate: int = SAMPLE_RATE,
                      block_seconds: float = 10.0, name: str = "<stdin>"
                      ) -> Iterator[np.ndarray]:
    """Decode a file of any length block by block (mono float32 at ``sample_rate``), so memory
    stays flat for hours of audio. The blocks joined equal ``load_audio`` to resampler
    rounding (soxr's streaming resampler). ``path`` may be an open binary file (stdin)."""
    if isinstance(path, str | Path):
        path = Path(path)
        _check_file(path)
        head = _head(path)
        _warn_if_truncated(path, head)
        source: Any = str(path)
    else:
        source, path = path, Path(name)
        head = b""
        if source.seekable():
            head = source.read(12)
            source.seek(0)
        else:
            source, head = _pipe_source(source)
    quiet = _is_mp3(path, head)
    try:
        with _quiet_decoder(quiet):
            handle = sf.SoundFile(source)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise _decode_error(path, exc) from exc
    with handle:
        rate = handle.samplerate
        if not MIN_RATE <= rate <= MAX_RATE:
            raise AudioError(f"{path}: sample rate {rate} Hz is outside {MIN_RATE}-{MAX_RATE} "
                             "Hz; not a usable recording")
        resampler = stream_resampler(rate, sample_rate)
        block = max(1, round(block_seconds * rate))
        total = 0
        while True:
            try:
                with _quiet_decoder(quiet):  # per read: never silence stderr across a yield
                    data = handle.read(block, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise _decode_error(path, exc) from exc
            last = len(data) < block
            audio = _finite_mono(data, path)
            total += len(audio)
            audio = resampler(audio, last) if resampler is not None else \
                np.clip(audio, -1.0, 1.0).astype(np.float32, copy=False)
            if len(audio):
                yield audio
            if last:
                break
        if total == 0:
            raise AudioError(f"{path}: contains no samples")
