"""Training-time augmentation on whole batches of waveforms (B, S), done in torch so that the
data path keeps up with the model step: random time shift and background-noise mixing, as in
the Speech Commands recipe (noise with probability 0.8 at volume U[0, 0.1]; silence examples
always get noise at volume U[0, 1]; +-100 ms shift). Nothing here runs at evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from kwspot.audio import load_audio
from kwspot.errors import KwspotError


@dataclass(frozen=True)
class AugmentConfig:
    background_prob: float = 0.8
    background_volume: float = 0.1
    silence_volume: float = 1.0
    time_shift_ms: float = 100.0
    # None: noise files at their own level (the paper's recipe). A value rescales every noise
    # recording to this RMS first, so "volume" means the same for every file and silence
    # covers loud rooms too (the lite set's noise files are at RMS 0.002-0.006).
    noise_rms: float | None = None
    # Causal models only: each example is preceded by this much audio (other training clips,
    # kept with ``history_speech_prob``, else silence; the background noise runs on across
    # it), and the loss is taken on the clip's window as a stream scores it (real history in
    # the convs, not zero padding). 0: off, clips alone (the paper's recipe).
    history_ms: float = 0.0
    history_speech_prob: float = 0.5

    def __post_init__(self) -> None:
        if self.history_ms < 0:
            raise KwspotError(f"--history-ms must be 0 or more, got {self.history_ms}")
        if not 0.0 <= self.history_speech_prob <= 1.0:
            raise KwspotError("history_speech_prob must be in [0, 1], got "
                              f"{self.history_speech_prob}")


@dataclass(frozen=True)
class SpecAugmentConfig:
    """SpecAugment (Park et al. 2019) without time warping, on the features in training:
    ``freq_masks`` bands of U{0..freq_width-1} channels and ``time_masks`` spans of
    U{0..time_width-1} frames set to zero (BC-ResNet's code: int(U[0, F))). All zero (the
    default): off."""

    freq_masks: int = 0
    freq_width: int = 0
    time_masks: int = 0
    time_width: int = 0

    @property
    def enabled(self) -> bool:
        return bool(self.freq_masks * self.freq_width or self.time_masks * self.time_width)


def spec_augment(features: torch.Tensor, cfg: SpecAugmentConfig,
                 generator: torch.Generator) -> torch.Tensor:
    """(B, C, T) features with random channel bands and frame spans zeroed, per example;
    vectorised (masks built from broadcast comparisons, no per-example loop)."""
    if not cfg.enabled:
        return features
    batch, channels, frames = features.shape
    keep = torch.ones(batch, channels, frames, dtype=torch.bool)
    for count, width, size, axis in ((cfg.freq_masks, cfg.freq_width, channels, 1),
                                     (cfg.time_masks, cfg.time_width, frames, 2)):
        if not count or not width:
            continue
        widths = (torch.rand(batch, count, generator=generator) * width).long()
        widths = widths.clamp(max=size)
        starts = (torch.rand(batch, count, generator=generator)
                  * (size - widths + 1)).long()
        index = torch.arange(size)
        masked = ((index >= starts[..., None]) & (index < (starts + widths)[..., None])).any(1)
        keep &= ~(masked[:, :, None] if axis == 1 else masked[:, None, :])
    return features * keep.to(features.device)  # masks drawn on the CPU generator


class NoiseBank:
    """Background recordings; each sampled segment lies inside one recording."""

    def __init__(self, recordings: Sequence[np.ndarray], rms: float | None = None) -> None:
        if not recordings:
            raise ValueError("NoiseBank needs at least one recording")
        if rms is not None:
            recordings = [r * (rms / max(float(np.sqrt(np.mean(np.square(r)))), 1e-8))
                          for r in recordings]
        self.recordings = [torch.from_numpy(np.asarray(r, np.float32)) for r in recordings]
        self.lengths = torch.tensor([len(r) for r in recordings])

    @classmethod
    def from_files(cls, paths: Sequence[str], rms: float | None = None) -> NoiseBank:
        return cls([load_audio(p) for p in paths], rms)

    @classmethod
    def synthetic(cls, seed: int = 0, seconds: float = 30.0, rate: int = 16000,
                  rms: float | None = None) -> NoiseBank:
        """White, pink and brown noise: a stand-in when a dataset ships no background noise."""
        rng = np.random.default_rng(seed)
        n = int(seconds * rate)
        white = rng.standard_normal(n)
        spectrum = np.fft.rfft(rng.standard_normal(n))
        freqs = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
        pink = np.fft.irfft(spectrum / np.sqrt(freqs), n)
        brown = np.fft.irfft(spectrum / freqs, n)
        return cls([0.3 * x / np.abs(x).max() for x in (white, pink, brown)], rms)

    def sample(self, count: int, length: int, generator: torch.Generator) -> torch.Tensor:
        """(count, length) segments; a recording shorter than ``length`` is tiled.

        Row-by-row slicing: a fancy-index gather over (count, length) positions cost more
        than the model's training step.
        """
        which = torch.randint(len(self.recordings), (count,), generator=generator)
        fraction = torch.rand(count, generator=generator)
        out = torch.empty(count, length)
        for row, (w, f) in enumerate(zip(which.tolist(), fraction.tolist(), strict=True)):
            recording = self.recordings[w]
            if len(recording) < length:
                recording = recording.repeat(length // len(recording) + 2)
            offset = int(f * (len(recording) - length + 1))
            out[row] = recording[offset : offset + length]
        return out


def noise_bank(paths: Sequence[str], seed: int, rms: float | None = None) -> NoiseBank:
    """The dataset's noise recordings, or synthetic noise when it ships none."""
    return NoiseBank.from_files(paths, rms) if paths else NoiseBank.synthetic(seed, rms=rms)


def time_shift(batch: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each row by U{-max_shift..max_shift} samples (positive = later), zero-filled.

    Row slices, not a gather: a (B, S) index tensor cost 7 ms a batch in the training loop.
    """
    if max_shift <= 0:
        return batch
    n, length = batch.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (n,), generator=generator).tolist()
    out = torch.zeros_like(batch)
    for row, shift in enumerate(shifts):
        if shift >= 0:
            out[row, shift:] = batch[row, : length - shift]
        else:
            out[row, :shift] = batch[row, -shift:]
    return out


def mix_background(
    batch: torch.Tensor,
    is_silence: torch.Tensor,
    noise: NoiseBank,
    cfg: AugmentConfig,
    generator: torch.Generator,
) -> torch.Tensor:
    n, length = batch.shape
    segments = noise.sample(n, length, generator)
    use = torch.rand(n, generator=generator) < cfg.background_prob
    volume = torch.rand(n, generator=generator) * cfg.background_volume * use
    silence_volume = torch.rand(n, generator=generator) * cfg.silence_volume
    volume = torch.where(is_silence, silence_volume, volume)
    return torch.addcmul(batch, volume[:, None], segments).clamp_(-1.0, 1.0)


def augment_batch(
    batch: torch.Tensor,
    is_silence: torch.Tensor,
    noise: NoiseBank,
    cfg: AugmentConfig,
    sample_rate: int,
    generator: torch.Generator,
    history: torch.Tensor | None = None,
) -> torch.Tensor:
    """Shift each clip, put ``history`` (B, H) before it, mix background noise over the whole
    (B, H + S): the noise runs on from the history into the clip, as in a stream."""
    shifted = time_shift(batch, round(cfg.time_shift_ms * sample_rate / 1000), generator)
    if history is not None:
        shifted = torch.cat([history, shifted], dim=1)
    return mix_background(shifted, is_silence, noise, cfg, generator)


def history_frames(wanted_frames: int, window_frames: int, total_stride: int) -> int:
    """At least ``wanted_frames`` of history, rounded up so that the clip's last frame is one a
    causal model emits an output at (a multiple of ``total_stride`` from the first frame), as
    the stream's newest frame is: otherwise the window would leave the clip's end unseen."""
    if wanted_frames <= 0:
        return 0
    return wanted_frames + (-(wanted_frames + window_frames - 1)) % total_stride


def sample_history(pool: torch.Tensor, count: int, samples: int, speech_prob: float,
                   generator: torch.Generator) -> torch.Tensor:
    """(count, samples) of what came before a clip: clips of ``pool`` (N, S) end to end, each
    kept with ``speech_prob`` and silent otherwise, the last ``samples`` of them."""
    if samples <= 0:
        return pool.new_zeros(count, 0)
    per_row = -(-samples // pool.shape[1])
    picks = torch.randint(len(pool), (count, per_row), generator=generator)
    keep = (torch.rand(count, per_row, generator=generator) < speech_prob).to(pool.dtype)
    clips = pool[picks] * keep[..., None]  # (count, per_row, S)
    return clips.reshape(count, -1)[:, -samples:]


def fill_silence(
    audio: np.ndarray, is_silence: np.ndarray, noise: NoiseBank, volume: float, seed: int
) -> np.ndarray:
    """Evaluation silence: fixed noise segments at fixed random volumes, reproducible by seed."""
    rows = np.flatnonzero(is_silence)
    if len(rows) == 0:
        return audio
    gen = torch.Generator().manual_seed(seed)
    segments = noise.sample(len(rows), audio.shape[1], gen).numpy()
    scale = torch.rand(len(rows), generator=gen).numpy() * volume
    audio = audio.copy()
    audio[rows] = np.clip(segments * scale[:, None], -1.0, 1.0)
    return audio
