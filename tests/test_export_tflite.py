"""TFLite export (litert-torch) run with ai-edge-litert: both graphs equal PyTorch within
1e-4, the card says which output is which, and a failed check keeps nothing. Skips when the
optional extra is not installed (`pip install 'kwspot[tflite]'`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("litert_torch", reason="kwspot[tflite] is not installed")
pytest.importorskip("ai_edge_litert", reason="kwspot[tflite] is not installed")

from kwspot.errors import KwspotError
from kwspot.export import parity_clips
from kwspot.export.tflite import export_tflite, interpreter, run


@pytest.fixture(scope="module")
def trained(tiny_run: tuple[Path, dict]):
    from kwspot.checkpoint import load_classifier

    run_dir, _ = tiny_run
    return load_classifier(run_dir / "best.pt")


def test_tflite_graphs_equal_pytorch(trained, tmp_path: Path) -> None:
    model, record = trained
    audio = parity_clips(None, 8, model.features.clip_samples)
    out = tmp_path / "tiny.tflite"
    card = export_tflite(model, out, audio, record)
    assert out.is_file() and (tmp_path / "tiny.net.tflite").is_file()
    assert json.loads(out.with_suffix(".json").read_text()) == json.loads(json.dumps(card))
    assert card["format"] == "tflite" and card["batch"] == 1
    assert card["parity"]["max_abs_diff"] <= 1e-4
    # checked here independently of the export's own check, through the card's output map
    which = {o["is"]: o["index"] for o in card["outputs"]}
    runner = interpreter(out)
    clips = parity_clips(None, 4, model.features.clip_samples, seed=9)
    with torch.no_grad():
        logits = model(torch.from_numpy(clips)).numpy()
    for clip, want in zip(clips, logits, strict=True):
        outputs = run(runner, clip[None])
        assert np.abs(outputs[which["logits"]][0] - want).max() < 1e-3
        assert np.abs(outputs[which["posteriors"]][0] -
                      torch.softmax(torch.from_numpy(want), -1).numpy()).max() < 1e-4


def test_a_failed_parity_check_keeps_nothing(trained, tmp_path: Path) -> None:
    model, record = trained
    audio = parity_clips(None, 2, model.features.clip_samples)
    with pytest.raises(KwspotError, match="disagree"):
        export_tflite(model, tmp_path / "m.tflite", audio, record, tolerance=0.0)
    assert not list(tmp_path.iterdir())


def test_cli_exports_tflite(tiny_run: tuple[Path, dict], tmp_path: Path, capsys) -> None:
    from kwspot.cli import main

    run_dir, _ = tiny_run
    out = tmp_path / "cli.tflite"
    assert main(["export", str(run_dir), "--format", "tflite", "--out", str(out),
                 "--check-clips", "4"]) == 0
    printed = capsys.readouterr()
    assert "parity: max |tflite - torch|" in printed.out
    assert printed.err == ""  # the converter's own chatter is kept out
    assert out.is_file() and out.with_suffix(".json").is_file()


def test_plain_litert_example_agrees_with_pytorch(trained, tmp_path: Path) -> None:
    """docs/examples/plain_litert.py, shown verbatim in docs/deploy.md, in a subprocess
    that imports neither kwspot nor torch."""
    import soundfile as sf

    root = Path(__file__).resolve().parents[1]
    example = root / "docs" / "examples" / "plain_litert.py"
    code = "".join(example.read_text().splitlines(keepends=True)[1:])
    assert code.strip() in (root / "docs" / "deploy.md").read_text()
    model, record = trained
    out = tmp_path / "m.tflite"
    export_tflite(model, out, parity_clips(None, 2, model.features.clip_samples), record)
    clip = parity_clips(None, 1, model.features.clip_samples, seed=5)[0]
    wav = tmp_path / "clip.wav"
    sf.write(str(wav), clip, 16000, subtype="FLOAT")
    from processes import run_example

    result = run_example(example, [out, wav], tmp_path)
    assert result.returncode == 0, result.stderr
    label, score = result.stdout.split()[-2:]
    with torch.no_grad():
        want = torch.softmax(model(torch.from_numpy(clip[None])), -1)[0].numpy()
    assert label == model.labels[int(want.argmax())]
    assert abs(float(score) - float(want.max())) < 1e-3
