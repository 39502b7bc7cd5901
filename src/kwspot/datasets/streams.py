"""Long test recordings with ground truth, for measuring a detector the way a product runs it.

``build_streams`` writes, from ONE split of the data (so a test stream holds nothing a model
trained or was tuned on):

- ``keywords.wav``: every keyword clip of the split, each placed at a random time in a bed of
  non-keyword speech (the split's other words, FSDD digits, TTS sentences), noise and silence;
- ``negatives.wav``: at least ``negatives_minutes`` of the same kinds of non-keyword speech
  only, each pass over the material varied again (level through a new SNR against a noise
  bed whose level drifts, speed, noise, gaps), not one loop;

each with ``<name>.json``: the truth (keyword, start, end in seconds, SNR), what every
negative segment was, and how the stream was made. Speech sits in a continuous noise bed that
is generated here (coloured noise with a drifting slope and level, and mains hum), not cut from
any dataset's noise files, so the streams share no noise with training either. Each item gets
an SNR drawn from ``snr_db`` relative to that bed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from kwspot.audio import SAMPLE_RATE, load_audio, save_audio
from kwspot.datasets.negatives import fsdd_files, tts_sentences
from kwspot.errors import AudioError, KwspotError
from kwspot.fileio import atomic_write_text

TRUTH_FORMAT = "kwspot-stream-v1"


@dataclass(frozen=True)
class StreamConfig:
    split: str = "test"
    keywords: tuple[str, ...] = ()  # default: the dataset's keywords
    fsdd: str | None = None
    sentences: int = 400  # TTS sentences of non-keyword speech
    negatives_minutes: float = 60.0
    snr_db: tuple[float, float] = (5.0, 25.0)
    speed: tuple[float, float] = (0.85, 1.15)  # negatives-only stream: speed perturbation
    gap_s: tuple[float, float] = (0.2, 2.0)
    seed: int = 0
    # a split without clips of a keyword is an error, unless streams of negatives around
    # whatever keywords it has are wanted (benchmarks/wakeword_real_voices.py)
    require_keywords: bool = True


@dataclass(frozen=True)
class Item:
    kind: str  # "keyword", "unknown_word", "fsdd", "tts"
    label: str  # the keyword, the word, the digit, or the sentence
    audio: np.ndarray


def speech_bounds(audio: np.ndarray) -> tuple[int, int]:
    """Where the word is in a clip: ``speech_span`` (datasets.espeak) with 50 ms padding,
    so weak onsets and fricatives ("off", "yes") are kept; the whole clip if it is silent."""
    from kwspot.datasets.espeak import speech_span

    start, end = speech_span(audio, pad=SAMPLE_RATE // 20)
    return (start, end) if end > start else (0, len(audio))


def _rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio.astype(np.float64))) + 1e-12))


def noise_bed(samples: int, rng: np.random.Generator, segment_s: float = 10.0) -> np.ndarray:
    """Unit-RMS-ish noise whose colour (white..brown), level (+-6 dB) and hum drift every
    ``segment_s``, crossfaded so no edge clicks."""
    seg = round(segment_s * SAMPLE_RATE)
    fade = SAMPLE_RATE // 10
    out = np.zeros(samples + seg, np.float32)
    t = np.arange(seg + fade) / SAMPLE_RATE
    ramp = np.linspace(0, 1, fade, dtype=np.float32)
    for start in range(0, samples, seg):
        n = seg + fade
        spectrum = np.fft.rfft(rng.standard_normal(n))
        freqs = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
        piece = np.fft.irfft(spectrum / freqs ** (rng.uniform(0.0, 2.0) / 2), n)
        piece = piece / _rms(piece) * 10 ** (rng.uniform(-6, 6) / 20)
        if rng.random() < 0.3:  # mains hum and harmonics
            base = rng.choice([50.0, 60.0])
            hum = sum(np.sin(2 * np.pi * base * h * t + rng.uniform(0, 6.3)) / h
                      for h in (1, 2, 3))
            piece = piece + rng.uniform(0.3, 1.0) * hum
        piece = piece.astype(np.float32)
        piece[:fade] *= ramp
        piece[-fade:] *= ramp[::-1]
        out[start : start + n] += piece[: len(out) - start]
    return out[:samples]


def change_speed(audio: np.ndarray, factor: float) -> np.ndarray:
    """Speed perturbation (tempo and pitch together), as sox's ``speed``."""
    if abs(factor - 1.0) < 1e-3:
        return audio
    return soxr.resample(audio, round(SAMPLE_RATE * factor), SAMPLE_RATE).astype(np.float32)


def collect_items(data_path: str, cfg: StreamConfig) -> tuple[list[Item], list[Item], list[str]]:
    """(keyword items, negative items, bad files) of one split."""
    from kwspot.data import SILENCE, SPEECH_COMMANDS_KEYWORDS
    from kwspot.datasets.speech_commands import is_speech_commands, scan_speech_commands

    root = Path(data_path)
    if not is_speech_commands(root):
        raise KwspotError(f"{root}: streams need a Speech Commands layout with official lists")
    keywords = cfg.keywords or SPEECH_COMMANDS_KEYWORDS
    rows = [u for u in scan_speech_commands(root) if u.split == cfg.split]
    missing = [k for k in keywords if not any(u.label == k for u in rows)]
    if missing and cfg.require_keywords:
        raise KwspotError(f"no {cfg.split} clips of {', '.join(missing)} in {root}")
    positives: list[Item] = []
    negatives: list[Item] = []
    bad: list[str] = []
    for u in rows:
        if u.label == SILENCE or u.path is None:
            continue
        try:
            audio = load_audio(u.path)
        except AudioError as exc:
            bad.append(str(exc))
            continue
        start, end = speech_bounds(audio)
        item = Item("keyword" if u.label in keywords else "unknown_word", u.label,
                    audio[start:end])
        (positives if u.label in keywords else negatives).append(item)
    if cfg.fsdd:
        for path in fsdd_files(cfg.fsdd, cfg.split, keywords):
            audio = load_audio(path)
            start, end = speech_bounds(audio)
            negatives.append(Item("fsdd", Path(path).name[0], audio[start:end]))
    for text, audio in tts_sentences(cfg.split, cfg.sentences, cfg.seed, keywords):
        negatives.append(Item("tts", text, audio))
    return positives, negatives, bad


class _Timeline:
    """Speech items laid end to end with gaps; noise added once at the end."""

    def __init__(self, rng: np.random.Generator, cfg: StreamConfig) -> None:
        self.rng, self.cfg = rng, cfg
        self.pieces: list[np.ndarray] = []
        self.cursor = 0
        self.truth: list[dict[str, Any]] = []
        self.segments: list[dict[str, Any]] = []

    def gap(self) -> None:
        n = round(self.rng.uniform(*self.cfg.gap_s) * SAMPLE_RATE)
        self.pieces.append(np.zeros(n, np.float32))
        self.cursor += n

    def add(self, item: Item, speed: float = 1.0) -> None:
        audio = change_speed(item.audio, speed)
        snr = float(self.rng.uniform(*self.cfg.snr_db))
        level = 10 ** (snr / 20) / _rms(audio)  # noise bed is ~unit RMS before scaling
        self.pieces.append((audio * level).astype(np.float32))
        start, end = self.cursor / SAMPLE_RATE, (self.cursor + len(audio)) / SAMPLE_RATE
        record = {"start": round(start, 3), "end": round(end, 3), "snr_db": round(snr, 1)}
        if item.kind == "keyword":
            self.truth.append({"keyword": item.label, **record})
        else:
            self.segments.append({"kind": item.kind, "label": item.label, **record,
                                  "speed": round(speed, 3)})
        self.cursor += len(audio)

    def render(self, noise_db: float) -> np.ndarray:
        """Speech at its SNR over the bed; the whole thing scaled so speech peaks stay < 1."""
        speech = np.concatenate(self.pieces) if self.pieces else np.zeros(1, np.float32)
        mixed = speech + noise_bed(len(speech), self.rng)
        return (mixed * 10 ** (noise_db / 20) / max(1.0, float(np.abs(mixed).max()) *
                                                     10 ** (noise_db / 20) / 0.99)).astype(
            np.float32)


def build_streams(data_path: str, out_dir: str | Path, cfg: StreamConfig) -> dict[str, Any]:
    """Write keywords.wav/.json and negatives.wav/.json under ``out_dir``; returns a summary."""
    positives, negatives, bad = collect_items(data_path, cfg)
    made = write_streams(positives, negatives, out_dir, cfg,
                         {"split": cfg.split, "data": str(data_path), "bad_files": bad})
    return {**made, "bad_files": bad}


def write_streams(positives: Sequence[Item], negatives: Sequence[Item], out_dir: str | Path,
                  cfg: StreamConfig, meta: dict[str, Any]) -> dict[str, Any]:
    """The two streams from any items: every keyword once among negatives (keywords.wav) and
    ``cfg.negatives_minutes`` of negatives alone, each pass varied again (negatives.wav)."""
    out = Path(out_dir)
    if not negatives:
        raise KwspotError(f"no non-keyword speech in split {cfg.split!r}")
    rng = np.random.default_rng([cfg.seed, 101])
    made = {**meta, "config": asdict(cfg)}

    # keyword stream: every keyword once, in random order, 0-2 negatives before each
    timeline = _Timeline(rng, cfg)
    for i in rng.permutation(len(positives)):
        for _ in range(int(rng.integers(0, 3))):
            timeline.add(negatives[int(rng.integers(len(negatives)))])
            timeline.gap()
        timeline.add(positives[int(i)])
        timeline.gap()
    _write(out / "keywords", timeline, rng, {**made, "stream": "keywords"})

    # negatives-only stream: passes over all negative material, each pass varied again;
    # about one gap in ten is a long stretch of noise alone
    timeline = _Timeline(rng, cfg)
    target = cfg.negatives_minutes * 60 * SAMPLE_RATE
    passes = 0
    while timeline.cursor < target:
        passes += 1
        for i in rng.permutation(len(negatives)):
            timeline.add(negatives[int(i)], float(rng.uniform(*cfg.speed)))
            timeline.gap()
            if rng.random() < 0.1:
                timeline.gap()
                timeline.gap()
            if timeline.cursor >= target:
                break
    _write(out / "negatives", timeline, rng, {**made, "stream": "negatives", "passes": passes})
    return {"keywords": len(positives), "negative_items": len(negatives), "out": str(out)}


def _write(stem: Path, timeline: _Timeline, rng: np.random.Generator,
           meta: dict[str, Any]) -> None:
    # level of the whole stream: -40..-25 dBFS bed, so speech spans quiet to loud
    audio = timeline.render(float(rng.uniform(-40, -25)))
    wav = stem.with_suffix(".wav")
    save_audio(wav, audio)
    truth = {"format": TRUTH_FORMAT, "audio": wav.name, "sample_rate": SAMPLE_RATE,
             "duration_s": round(len(audio) / SAMPLE_RATE, 3), **meta,
             "events": timeline.truth, "negatives": timeline.segments}
    atomic_write_text(stem.with_suffix(".json"), json.dumps(truth, indent=1) + "\n")


def read_truth(stream: str | Path) -> tuple[Path, dict[str, Any]]:
    """A stream's audio path and truth, from either the .wav or the .json."""
    path = Path(stream)
    truth_path = path.with_suffix(".json")
    if not truth_path.is_file():
        raise KwspotError(f"{path}: no ground truth {truth_path.name} beside it "
                          "(make streams with `kwspot streams`)")
    try:
        truth = json.loads(truth_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise KwspotError(f"{truth_path}: not readable JSON ({exc})") from None
    if truth.get("format") != TRUTH_FORMAT:
        raise KwspotError(f"{truth_path}: not a kwspot stream truth file")
    return truth_path.parent / truth["audio"], truth


def keyword_names(truths: Sequence[dict[str, Any]]) -> list[str]:
    return sorted({e["keyword"] for t in truths for e in t["events"]})
