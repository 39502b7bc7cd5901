"""docs/deploy.md's plain-onnxruntime example runs, needs no kwspot, and agrees with kwspot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from processes import run_example

from kwspot.runtime import OnnxKeywordModel, pretrained_path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "plain_onnxruntime.py"


def test_the_docs_show_the_example_file_verbatim() -> None:
    code = "".join(EXAMPLE.read_text().splitlines(keepends=True)[1:])  # minus its docstring
    assert code.strip() in (ROOT / "docs" / "deploy.md").read_text()
    assert len([line for line in code.splitlines() if line.strip()]) <= 16


@pytest.mark.parametrize("kind", ["keyword", "noise"])
def test_plain_onnxruntime_example_agrees_with_kwspot(kind: str, tmp_path: Path) -> None:
    from conftest import shared_data_path

    clip = shared_data_path() / "speech_commands_lite" / "yes" / "03401e93_nohash_0.wav"
    if kind == "keyword" and not clip.exists():
        pytest.skip("shared Speech Commands data not found")
    wav = tmp_path / "clip.wav"
    if kind == "keyword":
        wav.write_bytes(clip.read_bytes())
    else:
        noise = np.random.default_rng(0).standard_normal(12000) * 0.05
        sf.write(str(wav), noise.astype(np.float32), 16000)
    run = run_example(EXAMPLE, [pretrained_path(), wav], tmp_path)
    assert run.returncode == 0, run.stderr
    label, score = run.stdout.split()
    audio, _ = sf.read(str(wav), dtype="float32")
    window = np.zeros(16000, np.float32)
    window[: len(audio)] = audio[:16000]
    model = OnnxKeywordModel()
    expected = model.posteriors(window)[0]
    assert label == model.labels[int(expected.argmax())]
    assert float(score) == pytest.approx(float(expected.max()), abs=1e-3)
    if kind == "keyword":
        assert label == "yes"
