"""The exported ONNX graph (features inside) agrees with PyTorch, and describes itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from kwspot.audio import fit_length, load_audio
from kwspot.checkpoint import load_classifier
from kwspot.classifier import PosteriorModel
from kwspot.errors import KwspotError
from kwspot.export import export_onnx
from kwspot.runtime import OnnxKeywordModel


def _torch_posteriors(run_dir: Path, audio: np.ndarray) -> np.ndarray:
    model, _ = load_classifier(run_dir / "best.pt")
    with torch.no_grad():
        return PosteriorModel(model)(torch.from_numpy(audio)).numpy()


def test_onnx_matches_torch_on_real_clips(
    tiny_run: tuple[Path, dict], tiny_onnx: Path, shared_dataset
) -> None:
    test_dir = shared_dataset("speech_commands_lite_test")
    files = sorted(test_dir.rglob("*.wav"))[::40][:20]
    audio = np.stack([fit_length(load_audio(f), 16000) for f in files])
    onnx_model = OnnxKeywordModel(tiny_onnx)
    got = onnx_model.posteriors(audio)
    expected = _torch_posteriors(tiny_run[0], audio)
    assert got.shape == (len(files), 5)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)


def test_onnx_matches_torch_on_synthetic_speech(
    tiny_run: tuple[Path, dict], tiny_onnx: Path, tiny_dataset: Path
) -> None:
    files = sorted(tiny_dataset.rglob("*.wav"))[::25]
    audio = np.stack([load_audio(f) for f in files])
    got = OnnxKeywordModel(tiny_onnx).posteriors(audio)
    np.testing.assert_allclose(got, _torch_posteriors(tiny_run[0], audio), atol=1e-4, rtol=0)
    # batch size is dynamic: one clip alone gives the same answer
    single = OnnxKeywordModel(tiny_onnx).posteriors(audio[:1])
    np.testing.assert_allclose(single, got[:1], atol=1e-5)


def test_model_card_and_metadata(tiny_onnx: Path) -> None:
    card = json.loads(tiny_onnx.with_suffix(".json").read_text())
    assert card["labels"] == ["_silence_", "_unknown_", "yes", "no", "stop"]
    assert card["sample_rate"] == 16000 and card["window_samples"] == 16000
    assert card["features"]["kind"] == "mfcc" and card["features"]["n_mfcc"] == 40
    assert card["features"]["window_ms"] == 30.0 and card["features"]["hop_ms"] == 10.0
    assert card["parity"]["max_abs_diff"] <= 1e-4
    meta = {p.key: p.value for p in onnx.load(str(tiny_onnx)).metadata_props}
    assert json.loads(meta["kwspot_card"])["labels"] == card["labels"]


def test_export_refuses_on_parity_failure(
    tiny_run: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kwspot.export

    model, record = load_classifier(tiny_run[0] / "best.pt")
    audio = np.random.default_rng(0).uniform(-0.3, 0.3, (4, 16000)).astype(np.float32)
    monkeypatch.setattr(kwspot.export, "parity", lambda *_args: 0.25)
    with pytest.raises(KwspotError, match=r"disagree by 2\.50e-01"):
        export_onnx(model, tmp_path / "m.onnx", audio, record)
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "m.json").exists()
