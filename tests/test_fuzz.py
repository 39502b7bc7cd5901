"""Bounded property-based fuzzing (hypothesis): whatever bytes a file holds, and whatever is
pushed into a detector, the answer is audio or one KwspotError, never another exception."""

from __future__ import annotations

import io
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import soundfile as sf
from fakes import FakeModel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kwspot.audio import load_audio
from kwspot.errors import AudioError, KwspotError
from kwspot.runtime.detector import Detection, Detector, DetectorConfig

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _wav_bytes(seconds: float = 0.2, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(int(seconds * rate), np.float32), rate, format="WAV",
             subtype="PCM_16")
    return buffer.getvalue()


@FUZZ
@given(data=st.data())
@pytest.mark.filterwarnings("ignore::kwspot.audio.AudioWarning")  # truncation warns by design
def test_load_audio_never_raises_anything_but_audio_error(tmp_path: Path, data) -> None:
    valid = _wav_bytes()
    kind = data.draw(st.sampled_from(["random", "corrupted", "truncated"]))
    if kind == "random":
        content = data.draw(st.binary(max_size=2048))
    elif kind == "corrupted":  # a real header with bytes flipped anywhere
        content = bytearray(valid)
        for _ in range(data.draw(st.integers(1, 8))):
            content[data.draw(st.integers(0, 63))] = data.draw(st.integers(0, 255))
        content = bytes(content)
    else:
        content = valid[: data.draw(st.integers(0, len(valid)))]
    path = tmp_path / "fuzz.wav"
    path.write_bytes(content)
    try:
        audio = load_audio(path)
    except AudioError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)
        return
    assert audio.dtype == np.float32 and audio.ndim == 1 and len(audio) > 0
    assert np.all(np.abs(audio) <= 1.0)
    assert len(audio) < 16000 * 60  # no header made a short file into hours


class Flat(FakeModel):
    labels: ClassVar[list[str]] = ["_silence_", "_unknown_", "a", "b"]

    def posteriors(self, windows: np.ndarray) -> np.ndarray:
        loud = np.abs(np.atleast_2d(windows)).mean(axis=1, keepdims=True)
        return np.concatenate([1 - loud, 0 * loud, loud / 2, loud / 2], axis=1)


chunks = st.one_of(
    hnp.arrays(st.sampled_from([np.float32, np.float64, np.int16, np.int32, np.uint8,
                                np.complex64, np.bool_, np.float16]),
               hnp.array_shapes(min_dims=0, max_dims=2, max_side=40)),
    hnp.arrays(np.float32, st.integers(0, 4000),
               elements=st.one_of(st.floats(-1.5, 1.5, width=32), st.just(np.nan))),
    st.none(), st.text(max_size=5), st.floats(), st.lists(st.floats(-1, 1), max_size=50),
)


@FUZZ
@given(pushes=st.lists(chunks, min_size=1, max_size=6))
def test_push_answers_events_or_one_clear_error(pushes) -> None:
    detector = Detector(Flat(), DetectorConfig(threshold=0.3))
    for chunk in pushes:
        try:
            events = detector.push(chunk)
        except KwspotError as exc:
            assert "\n" not in str(exc)
            continue
        assert all(isinstance(e, Detection) and np.isfinite(e.score) for e in events)
    assert all(isinstance(e, Detection) for e in detector.flush())


@pytest.mark.parametrize("card_change,message", [
    ({"labels": None}, "labels"),
    ({"labels": []}, "labels"),
    ({"sample_rate": 0}, "sample_rate"),
    ({"sample_rate": "fast"}, "sample_rate"),
    ({"sample_rate": float("nan")}, "sample_rate"),
    ({"window_samples": 8000}, "window_samples"),
    ({"labels": ["_silence_", "yes"]}, "labels but the model has"),
])
def test_bad_model_cards_are_one_line_errors(tiny_onnx: Path, tmp_path: Path,
                                             card_change: dict, message: str) -> None:
    import json
    import shutil

    from kwspot.runtime import OnnxKeywordModel

    for f in tiny_onnx.parent.glob(tiny_onnx.stem + "*"):
        shutil.copy(f, tmp_path / f.name)
    card_file = (tmp_path / tiny_onnx.name).with_suffix(".json")
    card = json.loads(card_file.read_text())
    card.update(card_change)
    card_file.write_text(json.dumps(card))
    with pytest.raises(KwspotError, match=message):
        OnnxKeywordModel(tmp_path / tiny_onnx.name)
    card_file.write_text("{not json")
    with pytest.raises(KwspotError, match="not readable JSON"):
        OnnxKeywordModel(tmp_path / tiny_onnx.name)


def test_odd_paths_get_true_messages(tmp_path: Path) -> None:
    import os

    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(AudioError, match="symbolic link loop"):
        load_audio(tmp_path / "a")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(AudioError, match="not a regular file"):
        load_audio(tmp_path / "pipe")
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "missing.wav")
