"""Synthetic keywords from eSpeak NG: real synthesis, checked by length, energy and bytes."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kwspot.datasets import espeak
from kwspot.datasets.espeak import (
    SAMPLE_RATE,
    SynthesisError,
    VoiceStyle,
    available_voices,
    random_style,
    speak,
)
from kwspot.datasets.synth import make_clip, render_utterance, synthesize_dataset
from kwspot.errors import KwspotError

PLAIN = VoiceStyle(voice="en-us", speed_wpm=175, pitch=50, pitch_range=50)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2))) if len(x) else 0.0


def test_available_voices_are_english_and_speakable() -> None:
    voices = available_voices()
    assert "en-us" in voices and "en" in voices and "en-gb-scotland" in voices
    assert "en-us+f3" in voices and "en+m1" in voices
    assert all(v.split("+")[0].startswith("en") for v in voices)
    assert not any(v.startswith("en-shaw") for v in voices)  # Shavian script, not Latin
    assert len(voices) == len(set(voices))
    for voice in voices[:: max(1, len(voices) // 12)]:
        audio = speak("seven", VoiceStyle(voice, 175, 50, 50))
        assert rms(audio) > 0.005, voice


def test_speak_returns_trimmed_float32_at_16k() -> None:
    audio = speak("marvin", PLAIN)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 0.2 * SAMPLE_RATE < len(audio) < 1.2 * SAMPLE_RATE
    assert np.max(np.abs(audio)) <= 1.0
    assert rms(audio) > 0.01
    # Trimmed: the loudest 10 ms frame in the first/last 40 ms is well above silence.
    edge = SAMPLE_RATE // 25
    assert np.max(np.abs(audio[:edge])) > 0.001
    assert np.max(np.abs(audio[-edge:])) > 0.001


def test_speak_is_repeatable_whatever_came_before() -> None:
    first = speak("marvin", VoiceStyle("en-us+f3", 160, 60, 70))
    speak("hello there", VoiceStyle("en+klatt", 200, 30, 20))  # would leak state in eSpeak
    speak("whisper", VoiceStyle("en+whisper", 150, 50, 50))  # breath noise uses rand()
    again = speak("marvin", VoiceStyle("en-us+f3", 160, 60, 70))
    assert np.array_equal(first, again)


def test_different_styles_sound_different() -> None:
    base = speak("computer", PLAIN)
    for other in (
        VoiceStyle("en-us+f3", 175, 50, 50),
        VoiceStyle("en-gb-scotland", 175, 50, 50),
        VoiceStyle("en-us", 175, 85, 50),
    ):
        audio = speak("computer", other)
        n = min(len(base), len(audio))
        assert len(audio) != len(base) or not np.allclose(audio[:n], base[:n], atol=1e-3)
    slow = speak("computer", VoiceStyle("en-us", 110, 50, 50))
    fast = speak("computer", VoiceStyle("en-us", 300, 50, 50))
    assert len(slow) > 1.5 * len(fast)


def test_bad_voices_and_styles_are_rejected() -> None:
    with pytest.raises(SynthesisError, match="no voice"):
        speak("hello", VoiceStyle("xx-nonexistent", 175, 50, 50))
    # eSpeak itself would silently ignore an unknown variant.
    with pytest.raises(SynthesisError, match="variant"):
        speak("hello", VoiceStyle("en+nosuchvariant", 175, 50, 50))
    with pytest.raises(ValueError):
        VoiceStyle("en", 175, 120, 50)
    with pytest.raises(ValueError):
        VoiceStyle("en", 10, 50, 50)
    with pytest.raises(ValueError):
        speak("  ", PLAIN)


def test_random_style_varies_and_is_seeded() -> None:
    styles = [random_style(np.random.default_rng(i)) for i in range(40)]
    voices = set(available_voices())
    assert all(s.voice in voices for s in styles)
    assert len({s.voice for s in styles}) > 15
    assert len({s.voice.split("+")[0] for s in styles}) > 4  # several accents
    assert len({s.speed_wpm for s in styles}) > 10 and len({s.pitch for s in styles}) > 10
    assert random_style(np.random.default_rng(3)) == random_style(np.random.default_rng(3))


def test_make_clip_length_energy_and_placement() -> None:
    rng = np.random.default_rng(0)
    for _ in range(4):
        clip = make_clip("sheila", rng, noise_prob=0.0)
        assert clip.shape == (SAMPLE_RATE,) and clip.dtype == np.float32
        assert np.max(np.abs(clip)) <= 1.0
        voiced = np.nonzero(clip)[0]
        speech = clip[voiced[0] : voiced[-1] + 1]
        assert rms(speech) > 0.003  # the quietest gain (-18 dB peak) is still clearly audible
        assert len(speech) < SAMPLE_RATE  # silence on at least one side: it was placed, not cut
    starts = [np.nonzero(make_clip("go", np.random.default_rng(s), noise_prob=0))[0][0]
              for s in range(6)]  # fmt: skip
    assert len(set(starts)) > 3  # random offsets


def test_make_clip_noise_and_custom_length() -> None:
    clip = make_clip("stop", np.random.default_rng(1), clip_seconds=1.5, noise_prob=1.0)
    assert clip.shape == (int(1.5 * SAMPLE_RATE),)
    # Noise covers the whole clip, so no stretch is digital silence.
    assert np.all(np.abs(clip[:800]) > 0) or np.all(np.abs(clip[-800:]) > 0)
    quiet = make_clip("stop", np.random.default_rng(1), noise_prob=1.0, snr_db=(40.0, 40.0))
    loud = make_clip("stop", np.random.default_rng(1), noise_prob=1.0, snr_db=(0.0, 0.0))
    # Same style and placement (same seed), noise 40 dB apart: the speech-free part says so.
    clean_part = np.abs(make_clip("stop", np.random.default_rng(1), noise_prob=0.0)) == 0
    assert rms(loud[clean_part]) > 30 * rms(quiet[clean_part])


def test_make_clip_fits_long_phrases_into_the_clip() -> None:
    phrase = "hey kwspot please turn on the kitchen lights"
    clip = make_clip(phrase, np.random.default_rng(5), noise_prob=0.0)
    assert clip.shape == (SAMPLE_RATE,)
    # Still speech across most of the clip, not a fragment.
    frames = clip.reshape(-1, 160)
    assert np.mean(np.sqrt(np.mean(frames**2, axis=1)) > 1e-3) > 0.6


def test_make_clip_seed_reproducible_and_different_seeds_differ() -> None:
    a = make_clip("marvin", np.random.default_rng(42))
    b = make_clip("marvin", np.random.default_rng(42))
    c = make_clip("marvin", np.random.default_rng(43))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_render_utterance_reports_exact_word_times() -> None:
    segments = [0.5, "marvin", 1.0, "hey kwspot", "stop", 0.75]
    audio, times = render_utterance(segments, np.random.default_rng(0), style=PLAIN,
                                    noise_snr_db=None)  # fmt: skip
    assert audio.dtype == np.float32
    assert [w for w, _, _ in times] == ["marvin", "hey kwspot", "stop"]
    assert times[0][1] == pytest.approx(0.5, abs=1 / SAMPLE_RATE)
    assert times[1][1] == pytest.approx(times[0][2] + 1.0, abs=1 / SAMPLE_RATE)
    assert times[2][1] > times[1][2]  # a short pause between adjacent words
    assert len(audio) / SAMPLE_RATE == pytest.approx(times[2][2] + 0.75, abs=1 / SAMPLE_RATE)
    for word, start, end in times:
        span = audio[round(start * SAMPLE_RATE) : round(end * SAMPLE_RATE)]
        assert np.array_equal(span, speak(word, PLAIN))  # exactly that word, at that place
    inside = np.zeros(len(audio), dtype=bool)
    for _, start, end in times:
        inside[round(start * SAMPLE_RATE) : round(end * SAMPLE_RATE)] = True
    assert rms(audio[inside]) > 100 * max(rms(audio[~inside]), 1e-9)


def test_render_utterance_noise_keeps_times_and_sets_snr() -> None:
    segments = [0.3, "seven", 0.6, "go", 0.3]
    clean, t_clean = render_utterance(segments, np.random.default_rng(1), PLAIN, None)
    noisy, t_noisy = render_utterance(segments, np.random.default_rng(1), PLAIN, 10.0)
    assert t_clean == t_noisy and len(clean) == len(noisy)
    noise = noisy.astype(np.float64) - clean
    inside = np.zeros(len(clean), dtype=bool)
    for _, start, end in t_clean:
        inside[round(start * SAMPLE_RATE) : round(end * SAMPLE_RATE)] = True
    snr = 20 * np.log10(rms(clean[inside]) / rms(noise))
    assert snr == pytest.approx(10.0, abs=1.0)
    # A random style when none is given; still the same voice for the whole utterance.
    audio, times = render_utterance(["yes", "no"], np.random.default_rng(2), noise_snr_db=None)
    assert len(times) == 2 and rms(audio) > 0.005
    with pytest.raises(TypeError):
        render_utterance(["yes", None], np.random.default_rng(0))  # type: ignore[list-item]
    with pytest.raises(ValueError):
        render_utterance(["yes", -1.0], np.random.default_rng(0))


def test_synthesize_dataset_layout_counts_and_reproducibility(tmp_path: Path) -> None:
    words = ["yes", "hey kwspot"]
    calls: list[tuple[int, int]] = []
    counts = synthesize_dataset(words, tmp_path / "a", 3, seed=7,
                                progress=lambda d, t: calls.append((d, t)))  # fmt: skip
    assert counts == {"yes": 3, "hey kwspot": 3}
    assert calls[-1] == (6, 6) and len(calls) == 6
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["hey_kwspot", "yes"]
    names = sorted(p.name for p in (tmp_path / "a" / "hey_kwspot").iterdir())
    assert [n.split("_nohash_")[1] for n in sorted(names, key=lambda n: n[-8:])] == [
        "0000.wav", "0001.wav", "0002.wav"]
    assert all("_" not in n.split("_nohash_")[0] for n in names)  # one speaker field
    for path in (tmp_path / "a").rglob("*.wav"):
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.frames) == (SAMPLE_RATE, 1, SAMPLE_RATE)
        assert info.subtype == "PCM_16"
        audio, _ = sf.read(str(path), dtype="float32")
        assert rms(audio) > 0.003

    synthesize_dataset(words, tmp_path / "b", 3, seed=7)
    synthesize_dataset(words, tmp_path / "c", 3, seed=8)

    def clip_bytes(root: Path, word: str, k: int) -> bytes:
        (path,) = (root / word).glob(f"*_nohash_{k:04d}.wav")
        return path.read_bytes()

    for word, k in (("yes", 0), ("hey_kwspot", 2)):
        assert clip_bytes(tmp_path / "a", word, k) == clip_bytes(tmp_path / "b", word, k)
        assert clip_bytes(tmp_path / "a", word, k) != clip_bytes(tmp_path / "c", word, k)
    # synthesizing again over a folder replaces clip k, whatever its new speaker
    synthesize_dataset(["yes"], tmp_path / "c", 3, seed=7)
    assert len(list((tmp_path / "c" / "yes").iterdir())) == 3
    assert clip_bytes(tmp_path / "c", "yes", 0) == clip_bytes(tmp_path / "a", "yes", 0)

    # Order-independent: a clip depends only on (seed, word index, k).
    direct = make_clip("hey kwspot", np.random.default_rng([7, 1, 2]))
    sf.write(str(tmp_path / "direct.wav"), direct, SAMPLE_RATE, subtype="PCM_16")
    wav = clip_bytes(tmp_path / "a", "hey_kwspot", 2)
    assert (tmp_path / "direct.wav").read_bytes() == wav


def test_synthesize_dataset_rejects_bad_words(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        synthesize_dataset(["yes", "yes"], tmp_path, 1)
    with pytest.raises(ValueError):
        synthesize_dataset(["../up"], tmp_path, 1)
    assert synthesize_dataset(["no"], tmp_path, 0) == {"no": 0}


def test_speak_is_thread_safe() -> None:
    style = VoiceStyle("en-gb-x-rp+m3", 170, 40, 60)
    expected = speak("seven", style)
    results: list[np.ndarray] = []

    def work() -> None:
        for _ in range(5):
            results.append(speak("seven", style))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 15 and all(np.array_equal(r, expected) for r in results)


def test_missing_library_raises_synthesis_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(espeak, "_ENGINE", None)
    monkeypatch.setattr(espeak, "_locate_espeak", lambda: ("/nonexistent/libespeak-ng.so", None))
    with pytest.raises(SynthesisError, match="cannot load") as info:
        speak("hello", PLAIN)
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, KwspotError)


def test_missing_loader_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(espeak, "_ENGINE", None)
    monkeypatch.setitem(__import__("sys").modules, "espeakng_loader", None)
    monkeypatch.setattr(espeak.ctypes.util, "find_library", lambda name: None)
    with pytest.raises(SynthesisError, match="pip install espeakng-loader"):
        available_voices()


def test_missing_data_raises_synthesis_error(monkeypatch: pytest.MonkeyPatch) -> None:
    lib_path, _ = espeak._locate_espeak()
    monkeypatch.setattr(espeak, "_ENGINE", None)
    monkeypatch.setattr(espeak, "_locate_espeak", lambda: (lib_path, "/nonexistent-espeak-data"))
    with pytest.raises(SynthesisError, match="espeak_Initialize failed"):
        available_voices()
    monkeypatch.undo()
    assert "en-us" in available_voices()  # the real engine is untouched


def test_per_word_counts_and_clips_that_follow_the_phrase(tmp_path: Path, capsys) -> None:
    """A count per word, and clip_seconds=None: each word's clips as long as the phrase
    needs at the slowest pace (never under 1 s), so a phrase is not squeezed into 1 s."""
    from kwspot.cli import main
    from kwspot.datasets.synth import phrase_clip_seconds

    phrase = "please turn on the kitchen lights"
    assert phrase_clip_seconds("yes") == 1.0
    long_seconds = phrase_clip_seconds(phrase)
    assert long_seconds > 1.5 and round(long_seconds * 10) == long_seconds * 10
    counts = synthesize_dataset(["yes", phrase], tmp_path / "d", {"yes": 2, phrase: 1},
                                seed=3, clip_seconds=None)
    assert counts == {"yes": 2, phrase: 1}
    lengths = {p.parent.name: sf.info(str(p)).frames for p in (tmp_path / "d").rglob("*.wav")}
    assert lengths == {"yes": SAMPLE_RATE, phrase.replace(" ", "_"): round(long_seconds
                                                                            * SAMPLE_RATE)}
    with pytest.raises(ValueError, match="no clip count"):
        synthesize_dataset(["yes", "no"], tmp_path / "e", {"yes": 1})
    # the CLI: WORD=N and --clip-ms auto
    assert main(["synth", "--words", "go,stop=2", "--clips-per-word", "1", "--clip-ms", "auto",
                 "--out", str(tmp_path / "f")]) == 0
    assert "wrote 3 clips of 2 words" in capsys.readouterr().out
    assert len(list((tmp_path / "f" / "stop").glob("*.wav"))) == 2
    for bad, message in ((["--words", "go=x"], "must be a whole number"),
                         (["--words", "go=0"], "at least 1 clip"),
                         (["--words", "go", "--clip-ms", "long"], "milliseconds or 'auto'"),
                         (["--words", "go", "--clip-ms", "inf"], "must be in (0, 60000]"),
                         (["--words", "go,go=3"], "names 'go' twice")):
        assert main(["synth", *bad, "--out", str(tmp_path / "g")]) == 1
        assert message in capsys.readouterr().err
