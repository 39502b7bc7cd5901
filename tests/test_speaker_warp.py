"""The speaker warp moves pitch and formants where it says, and the windows use it only where
asked: the other draws stay as they were."""

from __future__ import annotations

import numpy as np
import pytest

pyworld = pytest.importorskip("pyworld", reason="kwspot[voices] (pyworld) is not installed")

from kwspot.datasets.speaker_warp import Warp, random_warp, warp_speaker  # noqa: E402

RATE = 16000


def vowel(f0: float = 120.0, formants: tuple[float, ...] = (700.0, 1200.0, 2600.0),
          seconds: float = 0.6) -> np.ndarray:
    """Harmonics of ``f0`` weighted by resonances at ``formants``: a crude steady vowel."""
    t = np.arange(int(seconds * RATE)) / RATE
    out = np.zeros_like(t)
    for h in range(1, int(4000 / f0)):
        f = h * f0
        gain = sum(1.0 / (1.0 + ((f - fc) / 90.0) ** 2) for fc in formants)
        out += gain * np.sin(2 * np.pi * f * t)
    return (0.3 * out / np.max(np.abs(out))).astype(np.float32)


def median_f0(audio: np.ndarray) -> float:
    x = audio.astype(np.float64)
    f0, times = pyworld.dio(x, RATE, f0_floor=60, f0_ceil=500)
    f0 = pyworld.stonemask(x, f0, times, RATE)
    return float(np.median(f0[f0 > 0]))


def first_formant(audio: np.ndarray) -> float:
    """The frequency of the envelope's largest peak below 1 kHz, mid-clip."""
    x = audio.astype(np.float64)
    f0, times = pyworld.dio(x, RATE, f0_floor=60, f0_ceil=500)
    f0 = pyworld.stonemask(x, f0, times, RATE)
    envelope = pyworld.cheaptrick(x, f0, times, RATE)
    frame = envelope[len(envelope) // 2]
    freqs = np.arange(len(frame)) * RATE / (2 * (len(frame) - 1))
    low = freqs < 1000
    return float(freqs[low][np.argmax(frame[low])])


def test_pitch_and_formants_move_by_what_is_asked() -> None:
    clip = vowel()
    assert median_f0(clip) == pytest.approx(120, rel=0.03)
    assert first_formant(clip) == pytest.approx(700, rel=0.08)
    out = warp_speaker(clip, Warp(formant_ratio=1.2, f0_median_hz=200.0))
    assert len(out) == len(clip) and out.dtype == np.float32
    assert np.max(np.abs(out)) == pytest.approx(np.max(np.abs(clip)), rel=1e-5)
    assert median_f0(out) == pytest.approx(200, rel=0.05)
    assert first_formant(out) == pytest.approx(700 * 1.2, rel=0.08)
    down = warp_speaker(clip, Warp(formant_ratio=0.85, f0_median_hz=100.0))
    assert median_f0(down) == pytest.approx(100, rel=0.05)
    assert first_formant(down) == pytest.approx(700 * 0.85, rel=0.08)


def test_audio_without_voice_is_left_alone() -> None:
    silence = np.zeros(RATE // 2, np.float32)
    assert warp_speaker(silence, Warp(1.1, 150.0)) is silence
    hiss = (0.1 * np.random.default_rng(0).standard_normal(RATE // 2)).astype(np.float32)
    out = warp_speaker(hiss, Warp(1.1, 150.0))
    assert out is hiss or len(out) == len(hiss)


def test_random_speakers_cover_a_range_of_sizes() -> None:
    rng = np.random.default_rng(0)
    warps = [random_warp(rng) for _ in range(500)]
    formants = np.array([w.formant_ratio for w in warps])
    pitches = np.array([w.f0_median_hz for w in warps])
    assert 0.82 <= formants.min() < 0.92 and 1.12 < formants.max() <= 1.25
    assert 75 <= pitches.min() < 100 and 200 < pitches.max() <= 300
    # larger speakers are lower in both: the two rise together
    assert np.corrcoef(formants, pitches)[0, 1] > 0.8


def test_windows_warp_only_the_share_asked_and_leave_other_draws_alone() -> None:
    pytest.importorskip("livekit.wakeword.session", reason="kwspot[wakeword] not installed")
    from kwspot.wakeword.data import DataConfig, build_windows, warp_used

    cfg = DataConfig("happy", positives=12, soundalikes=4, soundalike_clips=6, sentences=6,
                     user_windows=0, noise_windows=2)
    assert not warp_used(cfg)
    plain = build_windows(cfg)
    warped = build_windows(DataConfig(**{**cfg.__dict__, "warp_share": 0.5}))
    assert warp_used(DataConfig("happy", warp_share=0.5))
    assert len(plain.audio) == len(warped.audio)
    assert plain.kinds == warped.kinds and plain.speakers == warped.speakers
    same = [bool(np.array_equal(a, b)) for a, b in zip(plain.audio, warped.audio, strict=True)]
    changed = {kind for kind, s in zip(plain.kinds, same, strict=True) if not s}
    assert changed <= {"positive", "soundalike", "sentence"} and "positive" in changed
    assert 0 < same.count(False) < len(same)
    assert all(s for kind, s in zip(plain.kinds, same, strict=True) if kind == "noise")
