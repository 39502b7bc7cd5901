"""The second shipped model, ``shipped-embedding`` (a 12-class head on the frozen speech
embedding): it loads by name from the CLI and the API, its card is complete, it finds real
keywords where the shipped TC-ResNet8 does, and it stays quiet on noise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kwspot.errors import KwspotError
from kwspot.runtime.detector import DetectorConfig, detect_audio
from kwspot.runtime.model import SHIPPED_EMBEDDING, load_keyword_model, pretrained_path

RATE = 16000


@pytest.fixture(scope="module")
def model():
    if not pretrained_path(SHIPPED_EMBEDDING).is_file():
        pytest.skip("no shipped embedding model in this checkout")
    return load_keyword_model(SHIPPED_EMBEDDING)


def test_it_loads_by_name_with_a_complete_card(model) -> None:
    assert model.labels[:2] == ["_silence_", "_unknown_"] and len(model.labels) == 12
    card = model.card
    assert card["calibration"]["mode"] == "shared"
    assert len(set(model.thresholds.values())) == 1 and len(model.thresholds) == 10
    assert card["calibration"]["latency_s"] > 0
    for key in ("training_data", "metrics", "intended_use", "limitations"):
        assert card[key], key
    assert "Apache-2.0" in card["training_data"]["licence"]
    assert "CC BY 4.0" in card["training_data"]["licence"]
    assert (model.path.parent / card["embedding"]["file"]).is_file()
    assert model.network is not None and model.embedding_session is not None
    with pytest.raises(KwspotError, match="no shipped model"):
        pretrained_path("shipped-tiny")


def test_it_stays_quiet_on_noise(model) -> None:
    rng = np.random.default_rng(3)
    noise = rng.standard_normal(20 * RATE).astype(np.float32)
    brown = np.cumsum(noise) / 300  # a rumble, then hiss
    audio = np.concatenate([0.05 * (brown[: 10 * RATE] - brown[: 10 * RATE].mean()),
                            0.02 * noise[10 * RATE :]]).astype(np.float32)
    assert detect_audio(audio, model) == []


def test_the_cli_takes_its_name(tmp_path: Path, model, capsys: pytest.CaptureFixture) -> None:
    from kwspot.cli import main

    wav = tmp_path / "quiet.wav"
    sf.write(wav, np.zeros(3 * RATE, np.float32), RATE)
    assert main(["detect", "--model", SHIPPED_EMBEDDING, "--json", str(wav)]) in (0, None)
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()
            if line.strip()] == []
    assert main(["detect", "--model", "shipped-tiny", str(wav)]) == 1
    # the name resolves to this model wherever a model is loaded, not to TC-ResNet8
    from kwspot.evaluate.clips import load_scorer
    from kwspot.runtime import Detector, OnnxKeywordModel

    assert Detector(SHIPPED_EMBEDDING).window == model.window_samples == 31712
    assert OnnxKeywordModel(SHIPPED_EMBEDDING).path == model.path
    assert load_scorer(SHIPPED_EMBEDDING).window_samples == 31712
    # calibrate may only read it (it would write into the installed package)
    capsys.readouterr()
    assert main(["calibrate", SHIPPED_EMBEDDING, str(wav), "--target-fa-per-hour", "2"]) == 1
    assert "copy the model out of the package" in capsys.readouterr().err


def test_it_finds_real_keywords_at_known_times(model, keyword_in_tap_noise) -> None:
    found = 0
    words = ["yes", "stop", "left", "go", "down"]
    for word in words:
        # a low threshold: a stream's start (primed with faint noise, not digital zeros,
        # which had fired "up" here at 0.6) and end must stay quiet too
        events = detect_audio(keyword_in_tap_noise(word), model, DetectorConfig(threshold=0.6))
        assert all(e.keyword == word and abs(e.time_s - 4.5) < 0.6 for e in events), events
        found += len(events) == 1
    assert found >= 4, f"found {found} of {len(words)} keywords"
