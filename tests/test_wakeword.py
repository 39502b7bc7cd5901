"""Wake words from typed text: the embedding port against the original ONNX files, the export
and its streaming path, sound-alikes, the data, the flow end to end, and its bad input."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import numpy as np
import pytest
import torch

pytest.importorskip("livekit.wakeword.session", reason="kwspot[wakeword] not installed")

from kwspot.errors import KwspotError
from kwspot.wakeword import embedding as emb
from kwspot.wakeword.model import WINDOW_SAMPLES, WakewordClassifier


@torch.no_grad()
def _embed(audio: np.ndarray) -> np.ndarray:
    """(N, S) -> (N, E, 96) through the torch port."""
    return emb.SpeechEmbedding()(torch.from_numpy(np.ascontiguousarray(audio))).numpy()


def _speechlike(rng: np.random.Generator, n: int, level: float = 0.1) -> np.ndarray:
    t = np.arange(n) / 16000
    tone = np.sin(2 * np.pi * (200 + 150 * np.sin(2 * np.pi * 3 * t)) * t)
    return (level * (tone + 0.3 * rng.standard_normal(n)) * np.hanning(n)).astype(np.float32)


@pytest.mark.parametrize("level", [0.3, 0.001])
def test_embedding_port_equals_onnx_runtime_on_the_original_files(level: float) -> None:
    """One embedding's samples through the wheel's own two graphs in ONNX Runtime (int16
    scale in, x/10 + 2 between them, as openWakeWord feeds them) and through the port."""
    import onnxruntime as ort

    folder = emb.resource_dir()
    mel = ort.InferenceSession(str(folder / emb.MEL_FILE))
    cnn = ort.InferenceSession(str(folder / emb.EMBEDDING_FILE))
    audio = _speechlike(np.random.default_rng(0), emb.EMBED_SAMPLES, level)[None]
    patch = mel.run(None, {"input": audio * 32768})[0][:, 0] / 10 + 2  # (1, 76, 32)
    expected = cnn.run(None, {"input_1": patch[..., None].astype(np.float32)})[0].reshape(1, 96)
    got = _embed(audio)[:, 0]
    assert got.shape == (1, 96)
    assert np.abs(got - expected).max() < 1e-3 * max(1.0, float(np.abs(expected).max()))


def test_embeddings_depend_only_on_their_own_samples() -> None:
    rng = np.random.default_rng(1)
    audio = _speechlike(rng, WINDOW_SAMPLES)[None]
    audio[0, :8000] *= 0.001  # a quiet start must not change later embeddings
    whole = _embed(np.concatenate([audio, audio * 0.5]))
    assert whole.shape == (2, 16, 96)
    for i in (0, 7, 15):
        start = i * emb.EMBED_HOP
        alone = _embed(audio[:, start : start + emb.EMBED_SAMPLES])[:, 0]
        np.testing.assert_allclose(whole[0, i], alone[0], atol=1e-4)


def test_missing_package_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("livekit") else real(name, *a))
    with pytest.raises(KwspotError, match=r"kwspot\[wakeword\]"):
        emb.resource_dir()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):
    from kwspot.wakeword.export import export_wakeword

    torch.manual_seed(0)
    model = WakewordClassifier("hey kwspot").eval()
    rng = np.random.default_rng(2)
    check = np.stack([_speechlike(rng, WINDOW_SAMPLES) for _ in range(3)])
    path = tmp_path_factory.mktemp("ww") / "hey-kwspot.onnx"
    card = export_wakeword(model, path, check)
    return model, path, card


def test_export_writes_three_checked_graphs_and_a_card(exported) -> None:
    from kwspot.runtime.model import load_keyword_model

    model, path, card = exported
    assert card["parity"]["max_abs_diff"] <= 1e-4
    for name in (path.name, f"{path.stem}.embed.onnx", f"{path.stem}.net.onnx",
                 f"{path.stem}.json", card["shared_weights"]["file"]):
        assert (path.parent / name).is_file()
    # the embedding is stored once: neither graph holding it is as big as its weights
    shared = (path.parent / card["shared_weights"]["file"]).stat().st_size
    assert shared > 2_000_000
    assert path.stat().st_size < shared and (path.parent / f"{path.stem}.embed.onnx"
                                             ).stat().st_size < shared / 4
    loaded = load_keyword_model(path)
    assert loaded.labels == ["_unknown_", "hey kwspot"]
    assert loaded.window_samples == WINDOW_SAMPLES
    assert card["embedding"]["sha256"] == emb.file_digests()
    audio = _speechlike(np.random.default_rng(3), WINDOW_SAMPLES)[None]
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(audio)), -1).numpy()
    np.testing.assert_allclose(loaded.posteriors(audio), expected, atol=1e-4)


@pytest.mark.parametrize("chunk", [160, 1280, 5000, 48000])
def test_stream_equals_the_audio_graph_at_every_hop(exported, chunk: int) -> None:
    """The detector's engine (an embedding per 80 ms, then the network on the last 16) gives
    the audio-in graph's posteriors for the same windows, whatever the chunk size."""
    from kwspot.runtime.detector import Detector

    _, path, _ = exported
    detector = Detector(path)
    assert detector.config.hop_ms == 80  # the card's hop
    audio = _speechlike(np.random.default_rng(4), 16000 * 4)
    scorer = detector.scorer
    scorer.reset()
    parts = [scorer.score(scorer.take(audio[i : i + chunk])) for i in range(0, len(audio), chunk)]
    streamed = np.concatenate(parts)
    from kwspot.runtime.model import silence_for

    # the stream is primed with one window of the model's silence (faint noise for it)
    padded = np.concatenate([silence_for(detector.model, WINDOW_SAMPLES), audio])
    windows = np.stack([padded[(j + 1) * 1280 : (j + 1) * 1280 + WINDOW_SAMPLES]
                        for j in range(len(streamed))])
    assert len(streamed) == len(audio) // 1280
    np.testing.assert_allclose(streamed, detector.model.posteriors(windows), atol=1e-5)


def test_a_hop_off_the_embedding_grid_is_refused(exported) -> None:
    from kwspot.runtime.detector import Detector, DetectorConfig

    with pytest.raises(KwspotError, match="multiple of the feature hop"):
        Detector(exported[1], DetectorConfig(hop_ms=100))


def _distance(a: list[str], b: list[str]) -> int:
    """Edit distance between two phoneme lists."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def test_sound_alikes_are_at_least_two_phonemes_away_or_at_most_half() -> None:
    from kwspot.datasets.espeak import phonemes
    from kwspot.wakeword.soundalikes import sound_alikes

    for phrase in ("marvin", "hey computer"):
        own = [p.strip("',") for p in phonemes(phrase).replace(" ", "|").split("|")]
        first = sound_alikes(phrase, 20, seed=0)
        assert len(first) == 20 and len(set(first)) == 20
        assert first == sound_alikes(phrase, 20, seed=0)
        assert first != sound_alikes(phrase, 20, seed=1)
        for alike in first:
            said = alike[2:-2].replace(" ", "")
            assert said != "".join(own)
            # re-split the edited string into phonemes by eSpeak's own reading of it
            theirs = [p.strip("',") for p in phonemes(alike).replace(" ", "|").split("|")]
            assert _distance(own, theirs) >= 2 or len(theirs) <= len(own) // 2 + 1, alike


@pytest.mark.parametrize("phrase,message", [
    ("", "empty"), ("   ", "empty"), ("!! ??", "letters"), ("the and", "function words"),
    ("a", "function words"), ("of the", "function words"), ("what is it?", "function words"),
    ("with me", "function words"), ("ow", "too short"), ("[[m'A@vIn]]", "phoneme input"),
    ("please computer wake up now and listen to every single word I say", "too long")])
def test_bad_phrases_are_one_line_errors(phrase: str, message: str) -> None:
    from kwspot.wakeword.flow import check_phrase

    with pytest.raises(KwspotError, match=message) as caught:
        check_phrase(phrase)
    assert "\n" not in str(caught.value)


def test_one_syllable_phrases_pass_with_a_warning_in_the_log_and_the_card() -> None:
    """One-syllable words were measured far weaker on real voices: a warning, not an error."""
    from kwspot.datasets.espeak import syllables
    from kwspot.wakeword.flow import WakewordConfig, phrase_warnings, wakeword_documentation

    counts = {w: syllables(w) for w in ("bed", "house", "happy", "sheila", "button",
                                         "being", "leo", "poem", "computer", "ok google")}
    assert counts == {"bed": 1, "house": 1, "happy": 2, "sheila": 2, "button": 2,
                      "being": 2, "leo": 2, "poem": 2, "computer": 3, "ok google": 4}
    assert phrase_warnings("happy") == phrase_warnings("leo") == []
    (warning,) = phrase_warnings("bed")
    assert "fewer than two syllables" in warning and "%" in warning
    card = wakeword_documentation("bed", WakewordConfig(phrase="bed", out="x"), embedding=True)
    assert warning in card["limitations"]
    assert not any("syllables" in line for line in wakeword_documentation(
        "happy", WakewordConfig(phrase="happy", out="x"), embedding=True)["limitations"])


def test_usable_phrases_pass_and_long_positives_are_sped_up_not_cut() -> None:
    from kwspot.datasets.espeak import VoiceStyle, speak
    from kwspot.wakeword.data import FIT, DataConfig, build_windows, fit_positive
    from kwspot.wakeword.flow import check_phrase
    from kwspot.wakeword.model import WINDOW_SAMPLES

    assert check_phrase("  hey   kwspot ") == "hey kwspot"
    assert check_phrase("marvin") == "marvin"
    phrase = "hello computer wake up please"
    slow = speak(phrase, VoiceStyle("en-us", 120, 50, 50))  # the slowest voices' pace
    assert len(slow) > WINDOW_SAMPLES  # would have been cut
    fitted = fit_positive(slow)
    assert FIT * WINDOW_SAMPLES - 2 <= len(fitted) <= FIT * WINDOW_SAMPLES + 2
    short = speak("marvin", VoiceStyle("en-us", 175, 50, 50))
    assert fit_positive(short) is short
    windows = build_windows(DataConfig(phrase, positives=6, soundalikes=0,
                                       soundalike_clips=0, sentences=0, user_windows=0,
                                       noise_windows=0))
    assert windows.audio.shape == (6, WINDOW_SAMPLES) and set(windows.kinds) == {"positive"}


def test_windows_keep_held_out_voices_and_speakers_apart(tmp_path) -> None:
    from kwspot.audio import save_audio
    from kwspot.datasets.negatives import voice_split
    from kwspot.wakeword.data import DataConfig, build_windows

    rng = np.random.default_rng(5)
    folder = tmp_path / "negatives"
    speakers = [f"{c}{c}{i}{i}" for i, c in enumerate("abcdefghij")]
    for speaker in speakers:
        save_audio(folder / "dog" / f"{speaker}_nohash_0.wav", _speechlike(rng, 16000))
        save_audio(folder / "_unknown_" / f"bird_{speaker}_nohash_1.wav", _speechlike(rng, 8000))
        save_audio(folder / "_unknown_" / f"marvin_{speaker}_nohash_2.wav", _speechlike(rng, 8000))
        save_audio(folder / "marvin" / f"{speaker}_nohash_0.wav", _speechlike(rng, 16000))
    cfg = DataConfig("marvin", positives=20, soundalikes=4, soundalike_clips=10, sentences=10,
                     user_windows=100, noise_windows=5)
    windows = build_windows(cfg, [folder])
    assert windows.audio.shape[1] == WINDOW_SAMPLES
    assert int(windows.labels.sum()) == 20
    assert windows.kinds.count("user") == 20  # files that may say "marvin" are never negatives
    by_split: dict[str, set[str]] = {"train": set(), "validation": set()}
    for kind, split, speaker in zip(windows.kinds, windows.splits, windows.speakers,
                                    strict=True):
        if kind == "noise":
            continue
        by_split[split].add(speaker)
        if kind != "user":  # an eSpeak voice: its own split, never a test voice
            assert voice_split(speaker) == split, (kind, split, speaker)
    assert by_split["train"] and by_split["validation"]
    assert not by_split["train"] & by_split["validation"]
    user = {s for k, s in zip(windows.kinds, windows.speakers, strict=True) if k == "user"}
    assert user <= set(speakers)  # "bird_<spk>" and "<spk>" are one speaker
    again = build_windows(cfg, [folder])
    np.testing.assert_array_equal(again.audio, windows.audio)
    only = build_windows(cfg, [folder], only="validation")
    assert set(only.splits) == {"validation"}
    assert len(only.splits) == windows.splits.count("validation")


def test_recordings_are_positives_split_by_speaker_and_seeded_by_file(tmp_path) -> None:
    """Each recording gives RECORDING_COPIES positive windows, its speaker in one split; a
    new file leaves the others' windows as they were; when every speaker would be held out,
    all train; bad folders and files are one-line errors naming --recordings."""
    from kwspot.audio import save_audio
    from kwspot.wakeword.data import (
        RECORDING_COPIES,
        DataConfig,
        build_windows,
        recording_splits,
        split_of,
    )

    rng = np.random.default_rng(3)
    names = [f"{c}{c}{i}{i}" for i, c in enumerate("abcdefghijkl")]
    held = [n for n in names if split_of(n) == "validation"]
    assert held and len(held) < len(names)  # both splits among these speakers
    folder = tmp_path / "recordings"
    for n in names:
        clip = np.zeros(16000, np.float32)
        clip[4000:11000] = _speechlike(rng, 7000, 0.3)  # speech inside silence, as recorded
        save_audio(folder / f"{n}_nohash_0.wav", clip)
    cfg = DataConfig("marvin", positives=2, soundalikes=0, soundalike_clips=0, sentences=0,
                     user_windows=0, noise_windows=0)
    windows = build_windows(cfg, recordings=[folder])
    kinds = np.array(windows.kinds)
    assert (kinds == "recording").sum() == RECORDING_COPIES * len(names)
    assert windows.labels[kinds == "recording"].all()
    seen = {(spk, split) for k, spk, split in zip(windows.kinds, windows.speakers,
                                                   windows.splits, strict=True)
            if k == "recording"}
    assert seen == {(n, split_of(n)) for n in names}
    # the speech ends late in the window, where the detector fires
    for audio in windows.audio[kinds == "recording"][:5]:
        loud = np.flatnonzero(np.abs(audio) > 0.2 * np.abs(audio).max())
        assert loud[-1] > WINDOW_SAMPLES - 0.8 * 16000
    # one file more: every other recording's windows unchanged
    save_audio(folder / "zz99_nohash_0.wav", _speechlike(rng, 8000, 0.3))
    more = build_windows(cfg, recordings=[folder])
    first = windows.audio[kinds == "recording"][:RECORDING_COPIES]
    more_first = more.audio[np.array(more.kinds) == "recording"][:RECORDING_COPIES]
    np.testing.assert_array_equal(first, more_first)
    # one copy each (as the calibration streams take them): the first of the twenty
    once = build_windows(cfg, recordings=[folder], recording_copies=1)
    assert (np.array(once.kinds) == "recording").sum() == len(names) + 1
    np.testing.assert_array_equal(once.audio[np.array(once.kinds) == "recording"][0],
                                  more_first[0])
    # a user whose only speaker hashes to validation still trains on it
    only_held = [folder / f"{held[0]}_nohash_0.wav"]
    assert recording_splits(only_held) == {only_held[0]: "train"}
    (tmp_path / "empty").mkdir()
    with pytest.raises(KwspotError, match="no audio files for --recordings"):
        build_windows(cfg, recordings=[tmp_path / "empty"])
    with pytest.raises(KwspotError, match="folder for --recordings not found"):
        build_windows(cfg, recordings=[tmp_path / "missing"])
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(KwspotError, match=r"^--recordings: .*broken\.wav"):
        build_windows(cfg, recordings=[folder])


def test_recordings_enter_the_fingerprint_only_when_given() -> None:
    from kwspot.wakeword.data import DataConfig
    from kwspot.wakeword.flow import WakewordConfig, _fingerprints

    data = DataConfig("marvin")
    plain = _fingerprints(WakewordConfig("marvin", "out"), data)
    given = _fingerprints(WakewordConfig("marvin", "out", recordings=("mine",)), data)
    assert plain["data"] != given["data"] and plain["head"] == given["head"]
    assert plain == _fingerprints(WakewordConfig("marvin", "out", recordings=()), data)
    # the calibration streams' length is their own part: a new length keeps the windows
    longer = _fingerprints(WakewordConfig("marvin", "out", calibration_minutes=240), data)
    assert longer["data"] == plain["data"] and longer["head"] == plain["head"]
    assert longer["calibration"] != plain["calibration"]


def test_negative_folders_without_audio_are_refused(tmp_path) -> None:
    from kwspot.wakeword.data import DataConfig, build_windows

    (tmp_path / "empty").mkdir()
    with pytest.raises(KwspotError, match="no audio files"):
        build_windows(DataConfig("marvin", positives=1), [tmp_path / "empty"])
    with pytest.raises(KwspotError, match="not found"):
        build_windows(DataConfig("marvin", positives=1), [tmp_path / "missing"])
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("a.wav", "b.wav"):
        (broken / name).write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(KwspotError, match="none of the 2 audio files tried could be read"):
        build_windows(DataConfig("marvin", positives=0, soundalikes=0, soundalike_clips=0,
                                 sentences=0, user_windows=10, noise_windows=0), [broken])


def _tiny(phrase: str = "marvin", seed: int = 0):
    from kwspot.wakeword.data import DataConfig

    return DataConfig(phrase, positives=40, soundalikes=6, soundalike_clips=15, sentences=15,
                      user_windows=0, noise_windows=10, seed=seed)


@pytest.mark.slow
def test_wakeword_flow_end_to_end_then_resumes(tmp_path) -> None:
    from kwspot.runtime.detector import Detector
    from kwspot.wakeword.flow import WakewordConfig, wakeword
    from kwspot.wakeword.train import HeadConfig

    out = tmp_path / "ww"
    cfg = WakewordConfig("marvin", str(out), calibration_minutes=0.3, data=_tiny(),
                         head=HeadConfig(epochs=2))
    lines: list[str] = []
    summary = wakeword(cfg, log=lines.append)
    model = out / "marvin.onnx"
    card = json.loads((out / "marvin.json").read_text())
    assert summary["model"] == str(model) and model.is_file()
    assert card["thresholds"]["marvin"] == summary["threshold"]
    assert card["calibration"]["hours"] > 0
    assert card["training"]["windows"]["validation"]["positive"] > 0
    assert "not real recordings" in summary["calibration"]["measured_on"]
    assert card["training"]["head"]["steps"] == 2 * 1  # every window, in one partial batch
    assert "eSpeak NG" in card["training_data"]["name"]
    assert "Apache-2.0" in card["training_data"]["pretrained"]
    assert "'marvin'" in card["intended_use"]
    assert "Positives are synthetic (eSpeak NG voices) only" in card["limitations"][0]
    head = out / "work" / "head.pt"
    stamp = os.stat(head).st_mtime_ns
    lines.clear()
    wakeword(cfg, log=lines.append)  # resumes: nothing synthesized or retrained
    assert os.stat(head).st_mtime_ns == stamp
    assert not any(line.startswith(("[1/5]", "[2/5]", "[4/5]")) for line in lines)
    loaded = Detector(out)  # the output folder loads: the side graphs are not candidates
    assert loaded.keywords == ["marvin"] and loaded.config.hop_ms == 80
    # two heads averaged: the windows are reused, the first head is the one-head model
    embedded = os.stat(out / "work" / "embeddings.npz").st_mtime_ns
    lines.clear()
    two = wakeword(replace(cfg, heads=2), log=lines.append)
    assert not any(line.startswith(("[1/5]", "[4/5]")) for line in lines)
    assert "[2/5] training 2 heads" in " ".join(lines)
    assert os.stat(out / "work" / "embeddings.npz").st_mtime_ns == embedded
    heads = torch.load(out / "work" / "heads2.pt", weights_only=True)["states"]
    one = torch.load(head, weights_only=True)["states"][0]
    assert all(torch.equal(heads[0][k], one[k]) for k in one)
    assert not all(torch.equal(heads[1][k], one[k]) for k in one)  # another seed
    card = json.loads((out / "marvin.json").read_text())
    assert two["head"]["heads"] == 2 and card["training"]["head"]["head_seeds"] == [0, 1]
    with pytest.raises(KwspotError, match="--heads averages heads on the speech embedding"):
        wakeword(replace(cfg, heads=2, backbone="tc-resnet8"))
    with pytest.raises(KwspotError, match="--heads must be"):
        wakeword(replace(cfg, heads=0))
    lines.clear()
    changed = replace(cfg, head=HeadConfig(epochs=3))
    assert wakeword(changed, log=lines.append)["head"]["epoch"] >= 1
    assert any(line.startswith("[2/5]") for line in lines)  # another config: trained again
    assert os.stat(head).st_mtime_ns != stamp
    # ... on the same windows and streams: only the head settings changed
    assert not any(line.startswith(("[1/5]", "[4/5]")) for line in lines)
    assert os.stat(out / "work" / "embeddings.npz").st_mtime_ns == embedded
    assert not (out / "work" / "heads2.pt").exists()  # trained with the old head settings
    lines.clear()
    hours = json.loads((out / "marvin.json").read_text())["calibration"]["hours"]
    longer = wakeword(replace(changed, calibration_minutes=0.6), log=lines.append)
    assert any(line.startswith("[4/5]") for line in lines)  # new streams, same windows+head
    assert not any(line.startswith(("[1/5]", "[2/5]")) for line in lines)
    assert longer["calibration"]["hours"] > hours
    lines.clear()
    wakeword(replace(changed, data=_tiny(seed=5)), log=lines.append)  # other data: anew
    assert any(line.startswith("[1/5]") for line in lines)


@pytest.mark.slow
def test_recordings_train_and_their_held_out_speakers_calibrate(tmp_path) -> None:
    """With --recordings the summary and card say how many trained and how many were held
    out, calibration names the held-out recordings, and the card's limitations say so."""
    from kwspot.audio import save_audio
    from kwspot.wakeword.data import split_of
    from kwspot.wakeword.flow import WakewordConfig, wakeword
    from kwspot.wakeword.train import HeadConfig

    rng = np.random.default_rng(4)
    names = [f"{c}{c}{i}{i}" for i, c in enumerate("abcdefghijkl")]
    folder = tmp_path / "mine"
    for n in names:
        save_audio(folder / f"{n}_nohash_0.wav", _speechlike(rng, 9000, 0.3))
    held = sum(split_of(n) == "validation" for n in names)
    out = tmp_path / "ww"
    summary = wakeword(WakewordConfig("marvin", str(out), calibration_minutes=0.2,
                                      data=_tiny(seed=3), head=HeadConfig(epochs=2),
                                      recordings=(str(folder),)), log=lambda line: None)
    card = json.loads((out / "marvin.json").read_text())
    assert summary["recordings"] == {"folders": [str(folder)], "windows_per_recording": 20,
                                     "train": len(names) - held, "validation": held}
    assert card["training"]["recordings"] == summary["recordings"]
    assert f"{held} held-out real recordings" in summary["calibration"]["measured_on"]
    assert card["training_data"]["recordings"]["folders"] == [str(folder)]
    assert "the recordings in --recordings" in card["limitations"][0]
    assert "a few recordings" in card["intended_use"]
    # the calibration keywords stream says each held-out recording once, beside the 8
    # held-out synthetic positives (every fifth of 40), not twenty augmented copies of it
    streams = out / "work" / "calibration"
    events = json.loads((streams / "keywords.json").read_text())["events"]
    assert len(events) == 40 // 5 + held
    # a work folder whose streams were cut the old way rebuilds them, and only them
    stamp = out / "work" / "config.json"
    stored = json.loads(stamp.read_text())
    del stored["fingerprints"]["calibration"]  # as stamped before the part existed
    stamp.write_text(json.dumps(stored))
    lines: list[str] = []
    wakeword(WakewordConfig("marvin", str(out), calibration_minutes=0.2, data=_tiny(seed=3),
                            head=HeadConfig(epochs=2), recordings=(str(folder),)),
             log=lines.append)
    assert any(line.startswith("[4/5]") for line in lines)
    assert not any(line.startswith(("[1/5]", "[2/5]")) for line in lines)


@pytest.mark.slow
def test_a_from_scratch_backbone_runs_the_same_flow_on_kwspot_features(tmp_path) -> None:
    """``backbone="tc-resnet8"``: the same windows as MFCCs, TC-ResNet8 trained from scratch,
    exported as a plain kwspot model (front end inside) and calibrated the same way."""
    from kwspot.runtime.detector import Detector
    from kwspot.wakeword.flow import WakewordConfig, scratch_features, wakeword
    from kwspot.wakeword.model import WINDOW_SAMPLES
    from kwspot.wakeword.train import HeadConfig

    out = tmp_path / "ww"
    summary = wakeword(WakewordConfig("marvin", str(out), calibration_minutes=0.2,
                                      data=_tiny(seed=2), head=HeadConfig(epochs=2),
                                      backbone="tc-resnet8"), log=lambda line: None)
    card = json.loads((out / "marvin.json").read_text())
    assert summary["backbone"] == "tc-resnet8" and card["model"] == "tc-resnet8"
    assert card["window_samples"] == WINDOW_SAMPLES == scratch_features().clip_samples
    assert card["training"]["backbone"] == "tc-resnet8"  # the same card shape as below
    assert "pretrained" not in card["training_data"] and "'marvin'" in card["intended_use"]
    assert card["training"]["windows"] == summary["windows"]
    assert card["parity"]["max_abs_diff"] <= 1e-4
    assert card["thresholds"]["marvin"] == summary["threshold"]
    stored = np.load(out / "work" / "embeddings.npz")["features"]
    assert stored.shape[1:] == (40, scratch_features().num_frames)
    assert Detector(out / "marvin.onnx").keywords == ["marvin"]
    with pytest.raises(KwspotError, match="unknown backbone 'resnet9000'"):
        wakeword(WakewordConfig("marvin", str(out), backbone="resnet9000"))


@pytest.mark.slow
def test_an_unreachable_false_alarm_target_is_said(tmp_path, monkeypatch) -> None:
    """When no threshold meets the target on the calibration streams, the flow says so and
    reports the best it reached (calibrate returns the highest threshold then)."""
    import kwspot.evaluate.calibrate as calibrate_module
    from kwspot.wakeword.flow import WakewordConfig, wakeword
    from kwspot.wakeword.train import HeadConfig

    def over_budget(model, streams, target, *a, **k):
        return {"thresholds": {"marvin": 0.99999},
                "calibration": {"all_keywords": {"frr": 0.5, "fa_per_hour": 7.5},
                                "hours": 0.1}}

    monkeypatch.setattr(calibrate_module, "calibrate", over_budget)
    monkeypatch.setattr(calibrate_module, "write_thresholds", lambda *a: None)
    lines: list[str] = []
    summary = wakeword(WakewordConfig("marvin", str(tmp_path / "ww"), target_fa_per_hour=0.5,
                                      calibration_minutes=0.1, data=_tiny(seed=1),
                                      head=HeadConfig(epochs=1)), log=lines.append)
    assert summary["target_met"] is False
    assert any("no threshold meets 0.5 false alarms per hour" in line and "7.50/h" in line
               for line in lines)


def test_cli_bad_phrase_and_bad_numbers_are_one_line_errors(capsys, tmp_path) -> None:
    from kwspot.cli import main

    assert main(["wakeword", "   "]) == 1
    assert "kwspot: error: the wake phrase is empty" in capsys.readouterr().err
    assert main(["wakeword", "marvin", "--positives", "0"]) == 1
    assert "--positives must be at least 1" in capsys.readouterr().err
    for minutes in ("0", "-1", "nan", "inf"):
        assert main(["wakeword", "marvin", "--out", str(tmp_path / "x"),
                     "--calibration-minutes", minutes]) == 1
        assert "--calibration-minutes must be" in capsys.readouterr().err
    assert main(["wakeword", "marvin", "--out", str(tmp_path / "x"),
                 "--target-fa-per-hour", "0"]) == 1
    assert "--target-fa-per-hour must be" in capsys.readouterr().err
    for option in ("--flite-share", "--piper-share", "--kokoro-share"):
        assert main(["wakeword", "marvin", "--out", str(tmp_path / "x"), option, "1.5"]) == 1
        assert f"{option} must be in [0, 1], got 1.5" in capsys.readouterr().err


def test_flite_voices_say_a_share_of_positives_and_sentences_held_out_by_voice(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With flite installed, a share of positives and sentences come from its voices: awb
    only in validation, the others only in training; the same style gives the same samples.
    Without flite there are no Flite voices and the windows are eSpeak's alone."""
    import kwspot.datasets.flite as flite
    from kwspot.wakeword.data import DataConfig, build_windows

    cfg = DataConfig("marvin", positives=30, soundalikes=0, soundalike_clips=0, sentences=20,
                     user_windows=0, noise_windows=0, flite_share=1.0)
    if flite.flite_voices():
        style = flite.FliteStyle("slt", 1.1, 180.0)
        once = flite.speak_flite("marvin", style)
        assert 0.3 < len(once) / 16000 < 1.5 and np.array_equal(once,
                                                                flite.speak_flite("marvin", style))
        windows = build_windows(cfg)
        speakers = {(s, split) for s, split in zip(windows.speakers, windows.splits,
                                                    strict=True)}
        assert {s for s, _ in speakers} <= {f"flite-{v}" for v in flite.VOICES}
        assert all((s == f"flite-{flite.HELD_OUT}") == (split == "validation")
                   for s, split in speakers)
        assert {k for k, s in zip(windows.kinds, windows.speakers, strict=True)
                if s.startswith("flite")} == {"positive", "sentence"}
    monkeypatch.setattr(flite.shutil, "which", lambda name: None)
    assert flite.flite_voices() == []
    plain = build_windows(cfg)
    assert not any(s.startswith("flite") for s in plain.speakers) and len(plain.audio) == 50
    with pytest.raises(KwspotError, match="flite is not installed"):
        flite.speak_flite("marvin", flite.FliteStyle("slt", 1.0, 180.0))
