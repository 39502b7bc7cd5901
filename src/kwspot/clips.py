"""Decode a list of utterances once into one (N, S) float32 array held in memory.

Speech Commands clips are 1 s, so even the full dataset (~105k clips, ~6.7 GB float32) fits
this machine; the lite set is ~300 MB. Decoding once keeps the training step CPU-bound on the
model instead of on file I/O. Bad files are reported and skipped, never fatal.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from kwspot.audio import fit_length, load_audio
from kwspot.data import NOISE_SPEAKER, Utterance
from kwspot.errors import AudioError


@dataclass
class ClipTable:
    audio: np.ndarray  # (N, S) float32; silence rows are zeros
    utterances: list[Utterance]  # the rows that decoded, aligned with ``audio``
    bad_files: list[str]  # "path: reason" for every file that failed


def decode_clips(
    utterances: Sequence[Utterance],
    clip_samples: int,
    sample_rate: int = 16000,
    workers: int = 4,
    progress: Callable[[int], None] | None = None,
    pad: np.ndarray | None = None,
) -> ClipTable:
    """Each utterance as ``clip_samples``: longer ones centre-cropped, shorter ones zero-padded
    at the end (as training sees them) or, with ``pad`` (``clip_samples`` of what the model
    hears between words), centred on it."""
    if pad is not None and pad.shape != (clip_samples,):
        raise ValueError(f"pad must be {clip_samples} samples, got {pad.shape}")
    recordings: dict[str, np.ndarray] = {}
    lock = threading.Lock()

    def segment(u: Utterance) -> np.ndarray:
        """A resolved silence row: ``clip_samples`` of a noise recording from ``start_s``,
        times ``gain`` (the recording is tiled if the window runs past its end)."""
        with lock:
            if u.path not in recordings:
                recordings[u.path] = load_audio(u.path, sample_rate)
            audio = recordings[u.path]
        start = min(round(u.start_s * sample_rate), len(audio) - 1)
        piece = audio[start : start + clip_samples]
        if len(piece) < clip_samples:
            piece = np.resize(np.concatenate([piece, audio]), clip_samples)
        return np.clip(piece * np.float32(u.gain), -1.0, 1.0).astype(np.float32)

    def decode(u: Utterance) -> np.ndarray | str:
        if u.path is None:
            return np.zeros(clip_samples, np.float32)
        try:
            if u.speaker.startswith(NOISE_SPEAKER):  # a resolved silence segment
                return segment(u)
            audio = load_audio(u.path, sample_rate)
            if pad is None or len(audio) >= clip_samples:
                return fit_length(audio, clip_samples)
            row = pad.astype(np.float32, copy=True)
            start = (clip_samples - len(audio)) // 2
            row[start : start + len(audio)] = audio
            return row
        except AudioError as exc:
            return str(exc)

    rows: list[np.ndarray] = []
    kept: list[Utterance] = []
    bad: list[str] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for u, result in zip(utterances, pool.map(decode, utterances), strict=True):
            if isinstance(result, str):
                bad.append(result)
            else:
                rows.append(result)
                kept.append(u)
            if progress:
                progress(1)
    audio = np.stack(rows) if rows else np.zeros((0, clip_samples), np.float32)
    return ClipTable(audio.astype(np.float32, copy=False), kept, bad)


@dataclass
class LabelledAudio:
    """Decoded clips with class indices; what training and evaluation both consume."""

    audio: np.ndarray  # (N, S)
    targets: np.ndarray  # (N,) class indices
    is_silence: np.ndarray  # (N,) bool: rows to be filled from background noise
    bad_files: list[str]
    data_checksum: str | None = None  # the dataset's (kwspot.datasets.prepare), for reports

    def __len__(self) -> int:
        return len(self.targets)


def load_labelled(
    utterances: Sequence[Utterance],
    labels: Sequence[str],
    clip_samples: int,
    sample_rate: int = 16000,
    progress: Callable[[int], None] | None = None,
    pad: np.ndarray | None = None,
) -> LabelledAudio:
    index = {label: i for i, label in enumerate(labels)}
    table = decode_clips(utterances, clip_samples, sample_rate, progress=progress, pad=pad)
    targets = np.array([index[u.label] for u in table.utterances], dtype=np.int64)
    silence = np.array([u.path is None for u in table.utterances], dtype=bool)
    return LabelledAudio(table.audio, targets, silence, table.bad_files)
