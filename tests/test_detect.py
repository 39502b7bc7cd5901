"""Detection over long audio: smoothing, threshold, refractory period, chunk-size independence,
and real keywords found at known times."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from kwspot.audio import load_audio
from kwspot.detect import DetectorConfig, StreamingDetector, detect_audio
from kwspot.errors import KwspotError
from kwspot.runtime import OnnxKeywordModel, pretrained_path

RATE = 16000


class EnergyModel:
    """Stand-in model: 'beep' probability = share of loud samples in the window's middle."""

    labels: ClassVar[list[str]] = ["_silence_", "_unknown_", "beep"]
    sample_rate = RATE
    window_samples = RATE

    def __init__(self) -> None:
        self.calls = 0

    def posteriors(self, windows: np.ndarray) -> np.ndarray:
        self.calls += 1
        windows = np.atleast_2d(windows)
        middle = windows[:, RATE // 4 : 3 * RATE // 4]
        p = (np.abs(middle) > 0.05).mean(axis=1)
        return np.stack([1 - p, np.zeros_like(p), p], axis=1)


def beeps(at_seconds: list[float], total: float, length: float = 0.4) -> np.ndarray:
    audio = np.zeros(int(total * RATE), np.float32)
    for t in at_seconds:
        start = int((t - length / 2) * RATE)
        audio[start : start + int(length * RATE)] = 0.5
    return audio


def test_fires_once_per_keyword_near_its_time() -> None:
    audio = beeps([2.0, 5.0, 8.5], total=10.0)
    events = detect_audio(audio, EnergyModel(), DetectorConfig(threshold=0.6))
    assert [e.keyword for e in events] == ["beep"] * 3
    for event, truth in zip(events, [2.0, 5.0, 8.5], strict=True):
        assert abs(event.time_s - truth) < 0.25, (event, truth)
        assert 0.6 <= event.score <= 1.0


def test_refractory_period_merges_close_repeats() -> None:
    audio = beeps([2.0, 2.9], total=5.0, length=0.3)
    close = detect_audio(audio, EnergyModel(), DetectorConfig(threshold=0.5, refractory_ms=1500))
    assert len(close) == 1
    apart = detect_audio(audio, EnergyModel(), DetectorConfig(threshold=0.5, refractory_ms=300))
    assert len(apart) == 2


def test_threshold_and_smoothing_suppress_a_blip() -> None:
    audio = beeps([3.0], total=6.0, length=0.12)  # a click, shorter than a word
    cfg = DetectorConfig(threshold=0.5, smooth_ms=500)
    assert detect_audio(audio, EnergyModel(), cfg) == []
    assert len(detect_audio(beeps([3.0], 6.0, 0.45), EnergyModel(), cfg)) == 1


def test_result_does_not_depend_on_chunk_size() -> None:
    audio = beeps([1.3, 4.2, 6.6], total=8.0)
    cfg = DetectorConfig(threshold=0.6)
    reference = detect_audio(audio, EnergyModel(), cfg, chunk_ms=1000)
    for chunk_ms in (10, 37.5, 100, 333, 8000):
        assert detect_audio(audio, EnergyModel(), cfg, chunk_ms=chunk_ms) == reference


def test_streaming_state_is_per_detector_and_reset_clears_it() -> None:
    model = EnergyModel()
    a, b = StreamingDetector(model), StreamingDetector(model)
    loud = beeps([0.5], total=1.0, length=0.9)
    first = a.push(loud) + a.push(np.zeros(RATE, np.float32))
    assert first and b.push(np.zeros(RATE, np.float32)) == []  # b heard nothing
    a.reset()
    assert a.samples_seen == 0 and len(a.history) == 0


def test_config_and_keyword_errors() -> None:
    with pytest.raises(KwspotError):
        DetectorConfig(threshold=1.5)
    with pytest.raises(KwspotError, match="cannot spot"):
        StreamingDetector(EnergyModel(), keywords=["marvin"])


def test_trained_model_finds_synthesized_keywords(tiny_onnx: Path) -> None:
    from kwspot.datasets.synth import random_style, render_utterance

    rng = np.random.default_rng(7)
    audio, spans = render_utterance([1.0, "stop", 1.5, "yes", 1.5, "no", 1.0], rng,
                                    style=random_style(rng), noise_snr_db=30.0)
    events = detect_audio(audio, OnnxKeywordModel(tiny_onnx), DetectorConfig(threshold=0.6))
    found = {(e.keyword, round(e.time_s, 1)) for e in events}
    for word, start, end in spans:
        centre = (start + end) / 2
        assert any(e.keyword == word and abs(e.time_s - centre) < 0.5 for e in events), (
            f"{word} at {centre:.2f}s not found in {found}")


def test_pretrained_model_finds_real_keyword_at_known_time(shared_dataset) -> None:
    if not pretrained_path().is_file():
        pytest.skip("no shipped model in this checkout")
    clips = shared_dataset("speech_commands_lite_test")
    noise = load_audio(shared_dataset("speech_commands_lite/_background_noise_") /
                       "running_tap.wav")[: 8 * RATE] * 0.05
    found = 0
    words = ["yes", "stop", "left", "go", "down"]
    for word in words:
        clip = load_audio(sorted((clips / word).glob("*.wav"))[3])
        audio = noise.copy()
        audio[4 * RATE : 4 * RATE + len(clip)] += clip
        events = detect_audio(audio, OnnxKeywordModel(), DetectorConfig(threshold=0.6))
        hits = [e for e in events if e.keyword == word and abs(e.time_s - 4.5) < 0.6]
        found += bool(hits)
        assert len(events) <= 2, events  # no burst of false alarms in tap noise
    assert found >= 4, f"found {found} of {len(words)} keywords"
