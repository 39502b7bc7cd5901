"""tools/ship_model.py: a re-export of the shipped network keeps its calibration and gets its
measured metrics; any other network gets neither (no card may claim figures measured on
another network)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

from kwspot.checkpoint import load_record, save_record
from kwspot.runtime.model import OnnxKeywordModel, card_path, pretrained_path

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def ship_model(name: str = "ship_model"):
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(module, checkpoint: Path, out: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setattr(sys, "argv", ["ship_model.py", str(checkpoint), "--out", str(out),
                                      "--check-data", str(out.parent / "no-such-data")])
    module.main()
    return json.loads(card_path(out).read_text())


@pytest.fixture
def shipped_copy(tmp_path: Path) -> Path:
    shipped = pretrained_path()
    for suffix in (".onnx", ".json", ".pt"):
        shutil.copy(shipped.with_suffix(suffix), tmp_path / f"model{suffix}")
    return tmp_path / "model.onnx"


def test_the_shipped_network_keeps_its_calibration_and_metrics(
        shipped_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = ship_model()
    before = json.loads(card_path(shipped_copy).read_text())
    checkpoint = shipped_copy.parent / "checkpoint.pt"
    shutil.copy(shipped_copy.with_suffix(".pt"), checkpoint)
    card = run(module, checkpoint, shipped_copy, monkeypatch)
    assert card["thresholds"] == before["thresholds"]
    assert card["calibration"] == before["calibration"]
    assert card["metrics"] == module.SHIPPED_MEASUREMENTS["metrics"]
    assert any(line.startswith("Thresholds were calibrated") for line in card["limitations"])
    assert card["training_data"]["licence"].startswith("Speech Commands: CC BY 4.0")
    # the written model runs with that card, and its embedded copy matches the side file
    assert OnnxKeywordModel(shipped_copy).thresholds == before["thresholds"]


def test_another_network_gets_no_thresholds_and_no_metrics(
        shipped_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = ship_model()
    record = load_record(shipped_copy.with_suffix(".pt"))
    first = next(k for k, v in record["state_dict"].items() if v.is_floating_point())
    record["state_dict"][first] = record["state_dict"][first] + 0.01
    checkpoint = shipped_copy.parent / "other.pt"
    save_record(record, checkpoint)
    card = run(module, checkpoint, shipped_copy, monkeypatch)
    assert "thresholds" not in card and "calibration" not in card
    assert "metrics" not in card
    assert not any(line.startswith("Thresholds were calibrated")
                   for line in card["limitations"])
    assert OnnxKeywordModel(shipped_copy).thresholds == {}
    shipped = load_record(shipped_copy.with_suffix(".pt"))
    assert (shipped["state_dict"][first] == record["state_dict"][first]).all()  # it ships


@pytest.fixture
def embedding_export(tmp_path: Path) -> Path:
    """The shipped embedding model's files, as an export named ``cand`` would be."""
    from kwspot.runtime.model import SHIPPED_EMBEDDING

    shipped = pretrained_path(SHIPPED_EMBEDDING)
    if not shipped.is_file():
        pytest.skip("no shipped embedding model in this checkout")
    (tmp_path / "export").mkdir()
    for suffix in (".onnx", ".embed.onnx", ".net.onnx", ".json"):
        shutil.copy(shipped.with_name(shipped.stem + suffix),
                    tmp_path / "export" / f"cand{suffix}")
    shared = shipped.with_name(shipped.stem + ".weights")  # referenced by that name
    if shared.is_file():
        shutil.copy(shared, tmp_path / "export" / shared.name)
    return tmp_path / "export" / "cand.onnx"


def test_the_embedding_model_gets_its_metrics_only_for_its_network(
        embedding_export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = ship_model("ship_embedding_model")
    out = tmp_path / "shipped" / "model.onnx"

    def ship() -> dict:
        monkeypatch.setattr(sys, "argv", ["ship_embedding_model.py", str(embedding_export),
                                          "--out", str(out)])
        module.main()
        return json.loads(card_path(out).read_text())

    card = ship()
    assert card["metrics"] == module.MEASUREMENTS["metrics"]
    assert card["embedding"]["file"] == "model.embed.onnx"
    assert card["network"]["file"] == "model.net.onnx"
    assert any(line.startswith("One shared threshold, calibrated for 2 false alarms")
               for line in card["limitations"])
    model = OnnxKeywordModel(out)  # the renamed graphs load together
    assert (out.parent / "model.weights").is_file()  # the embedding stored once, renamed too
    assert not (out.parent / "speech-embedding-speech-commands.weights").exists()
    assert len(model.labels) == 12 and model.embedding_session is not None
    # another head (its graph differs by one byte here): no metrics carried over
    net = embedding_export.with_name("cand.net.onnx")
    net.write_bytes(net.read_bytes() + b"\0")
    other = ship()
    assert "metrics" not in other
    # nor the limitations that quote its measurements
    assert not set(module.MEASURED_LIMITATIONS) & set(other["limitations"])
    assert set(module.MEASURED_LIMITATIONS) <= set(card["limitations"])
