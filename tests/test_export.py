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
    import kwspot.export.onnx

    model, record = load_classifier(tiny_run[0] / "best.pt")
    audio = np.random.default_rng(0).uniform(-0.3, 0.3, (4, 16000)).astype(np.float32)
    monkeypatch.setattr(kwspot.export.onnx, "parity", lambda *_args: 0.25)
    with pytest.raises(KwspotError, match=r"disagree by 2\.50e-01"):
        export_onnx(model, tmp_path / "m.onnx", audio, record)
    assert not list(tmp_path.iterdir())


def test_a_failed_re_export_leaves_the_earlier_onnx_export_as_it_was(
        tiny_run: tuple[Path, dict], tiny_onnx: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import kwspot.export.onnx

    for f in tiny_onnx.parent.glob(tiny_onnx.stem + ".*"):
        shutil.copy(f, tmp_path / f.name)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    model, record = load_classifier(tiny_run[0] / "best.pt")
    monkeypatch.setattr(kwspot.export.onnx, "parity", lambda *_args: 0.25)
    with pytest.raises(KwspotError, match="disagree"):
        export_onnx(model, tmp_path / tiny_onnx.name, np.zeros((2, 16000), np.float32), record)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_an_export_beside_another_formats_export_of_that_name_is_refused(
        tiny_run: tuple[Path, dict], tiny_onnx: Path, tmp_path: Path) -> None:
    import shutil

    for f in tiny_onnx.parent.glob(tiny_onnx.stem + ".*"):
        shutil.copy(f, tmp_path / f.name)
    # a TFLite export of the same name would overwrite this export's card (<name>.json)
    (tmp_path / tiny_onnx.with_suffix(".tflite").name).write_bytes(b"tflite model")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    model, record = load_classifier(tiny_run[0] / "best.pt")
    with pytest.raises(KwspotError, match="another name"):
        export_onnx(model, tmp_path / tiny_onnx.name, np.zeros((2, 16000), np.float32), record)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_int8_export_is_smaller_logs_its_calibration_and_agrees(
        tiny_run: tuple[Path, dict], tiny_dataset: Path, tmp_path: Path) -> None:
    from kwspot.export import parity_clips
    from kwspot.export.calibration import calibration_clips, calibration_log

    run_dir, _ = tiny_run
    model, record = load_classifier(run_dir / "best.pt")
    check = parity_clips(tiny_dataset, 16, 16000)
    clips, paths = calibration_clips(run_dir / "manifest.jsonl", 40, seed=3)
    assert len(paths) == 40
    assert calibration_clips(run_dir / "manifest.jsonl", 40, seed=3)[1] == paths  # logged draw
    float_card = export_onnx(model, tmp_path / "f.onnx", check, record)
    card = export_onnx(model, tmp_path / "q.onnx", check, record, precision="int8",
                       calibration=(clips, calibration_log(paths, 3, "manifest")))
    assert float_card["precision"] == "float32" and card["precision"] == "int8"
    assert card["quantization"]["calibration"]["clips"] == 40
    assert 0 < card["quantization"]["max_abs_diff_from_float"] < 0.1
    ops = {n.op_type for n in onnx.load(str(tmp_path / "q.onnx")).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    for name in ("q.onnx", "q.net.onnx"):
        float_size = (tmp_path / name.replace("q", "f", 1)).stat().st_size
        assert (tmp_path / name).stat().st_size < 0.7 * float_size
    quantized, reference = OnnxKeywordModel(tmp_path / "q.onnx"), OnnxKeywordModel(
        tmp_path / "f.onnx")
    agree = quantized.posteriors(check).argmax(1) == reference.posteriors(check).argmax(1)
    assert agree.mean() >= 0.9
    with pytest.raises(KwspotError, match="calibration"):
        export_onnx(model, tmp_path / "x.onnx", check, record, precision="int8")


def test_runtime_reads_the_embedded_card_when_the_side_file_is_missing(
        tiny_onnx: Path, tmp_path: Path) -> None:
    import shutil

    for f in tiny_onnx.parent.glob(tiny_onnx.stem + "*"):
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / tiny_onnx.name).with_suffix(".json").unlink()
    model = OnnxKeywordModel(tmp_path / tiny_onnx.name)
    assert model.labels == json.loads(tiny_onnx.with_suffix(".json").read_text())["labels"]
    bare = onnx.load(str(tmp_path / tiny_onnx.name))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / tiny_onnx.name))
    with pytest.raises(KwspotError, match="none is embedded"):
        OnnxKeywordModel(tmp_path / tiny_onnx.name)


def test_export_suffix_must_match_the_format(tiny_run: tuple[Path, dict], tmp_path: Path,
                                             capsys) -> None:
    from kwspot.cli import main

    run_dir, _ = tiny_run
    for args, message in (
            (["--out", str(tmp_path / "m.tflite")], "onnx models end in .onnx"),
            (["--out", str(tmp_path / "m.onx")], "onnx models end in .onnx"),
            (["--format", "tflite", "--out", str(tmp_path / "m.onnx")],
             "tflite models end in .tflite"),
            (["--precision", "int8", "--calibration-clips", "0"],
             "--calibration-clips must be at least 1")):
        assert main(["export", str(run_dir), *args]) == 1
        assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_verify_export_reports_both_accuracies_parity_size_and_latency(
        tiny_run: tuple[Path, dict], tiny_onnx: Path, tiny_dataset: Path) -> None:
    from kwspot.datasets import DataConfig
    from kwspot.evaluate.verify import verify_export

    run_dir, _ = tiny_run
    data = DataConfig(path=str(run_dir / "manifest.jsonl"))
    result = verify_export(tiny_onnx, data, "test", run_dir / "best.pt", runs=20)
    assert result["clips"] > 0
    assert result["accuracy"] == pytest.approx(result["checkpoint_accuracy"], abs=0.01)
    assert result["max_abs_diff"] < 1e-4 and result["argmax_agreement"] == 1.0
    assert set(result["size_bytes"]) == {tiny_onnx.name, tiny_onnx.with_suffix(".json").name,
                                         tiny_onnx.stem + ".net.onnx"}
    assert 0 < result["latency_ms"]["median"] <= result["latency_ms"]["p90"]


def test_an_export_of_the_shipped_model_keeps_its_card(tmp_path: Path) -> None:
    """Its training data, licences, intended use, limitations and calibrated thresholds go
    with every re-export, so the detector does not fall back to 0.8; its metrics do not (they
    were measured on the shipped graph)."""
    from kwspot.cli import main
    from kwspot.runtime import pretrained_path
    from kwspot.runtime.detector import Detector
    from kwspot.runtime.model import card_path

    shipped = json.loads(card_path(pretrained_path()).read_text())
    out = tmp_path / "again.onnx"
    assert main(["export", "shipped", "--out", str(out), "--check-clips", "4"]) == 0
    card = json.loads(card_path(out).read_text())
    for key in ("thresholds", "training_data", "intended_use"):
        assert card[key] == shipped[key], key
    assert card["limitations"][: len(shipped["limitations"])] == shipped["limitations"]
    assert "metrics" not in card
    assert card["calibration"]["carried_from"]["model"].startswith(
        "tc-resnet8-speech-commands.onnx (")
    assert card["calibration"]["latency_s"] == shipped["calibration"]["latency_s"]
    assert Detector(out).thresholds.tolist() == [shipped["thresholds"][k]
                                                 for k in Detector(out).keywords]
    out.with_suffix(".json").unlink()  # the embedded copy carries the same
    assert OnnxKeywordModel(out).card["thresholds"] == shipped["thresholds"]
    # the packaged checkpoint named by its path is the shipped model too
    by_path = tmp_path / "by-path.onnx"
    assert main(["export", str(pretrained_path().with_suffix(".pt")), "--out", str(by_path),
                 "--check-clips", "4"]) == 0
    assert json.loads(card_path(by_path).read_text())["thresholds"] == shipped["thresholds"]


@pytest.mark.needs_shared_data
def test_int8_shipped_model_loses_at_most_one_point_on_the_lite_test_fold(
        shared_dataset, tmp_path: Path) -> None:
    """`kwspot export shipped --precision int8` (ONNX Runtime QDQ, calibrated on 300 lite
    training clips) against the shipped PyTorch checkpoint on the same lite test clips."""
    from kwspot.cli import main
    from kwspot.datasets import DataConfig
    from kwspot.evaluate.verify import verify_export

    lite = shared_dataset("speech_commands_lite")
    out = tmp_path / "shipped8.onnx"
    assert main(["export", "shipped", "--precision", "int8", "--out", str(out),
                 "--calibration-data", str(lite), "--check-data", str(lite / "yes")]) == 0
    result = verify_export(out, DataConfig(path=str(lite)), "test", "shipped", runs=10)
    assert result["clips"] > 700
    assert result["checkpoint_accuracy"] - result["accuracy"] <= 0.01, result
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["quantization"]["calibration"]["clips"] == 300
    # "shipped" as the model verified is the packaged ONNX file, never the checkpoint itself
    plain = verify_export("shipped", DataConfig(path=str(lite)), "test", "shipped", runs=3)
    assert plain["model"].endswith(".onnx") and plain["size_bytes"]
    assert 0 < plain["max_abs_diff"] < 1e-4
    from kwspot.runtime import pretrained_path

    assert card["thresholds"] == OnnxKeywordModel(pretrained_path()).card["thresholds"]


def test_an_export_of_your_own_run_documents_its_data_and_your_card(
        tiny_run: tuple[Path, dict], tiny_dataset: Path, tmp_path: Path, capsys) -> None:
    """A user's export says what it was trained on (derived from the run), which split its
    one accuracy comes from, and what the user adds with --card; calibrating removes the
    'no thresholds' limitation. A bad --card is one line and writes nothing."""
    from kwspot.cli import main
    from kwspot.evaluate.calibrate import write_thresholds
    from kwspot.export.documentation import NOT_RECORDED, UNCALIBRATED
    from kwspot.runtime.model import card_path

    run_dir, _ = tiny_run
    out = tmp_path / "mine.onnx"
    assert main(["export", str(run_dir), "--out", str(out), "--check-clips", "4"]) == 0
    card = json.loads(card_path(out).read_text())
    assert card["training_data"]["path"] == str(tiny_dataset)
    assert card["training_data"]["licence"] == NOT_RECORDED  # espeak clips: kwspot cannot tell
    assert card["intended_use"] == NOT_RECORDED
    [metric] = card["metrics"]
    assert metric["value"] == pytest.approx(card["training"]["val_accuracy"], abs=1e-4)
    assert "validation split" in metric["data"]
    assert card["limitations"] == [UNCALIBRATED]
    assert OnnxKeywordModel(out).card["training_data"] == card["training_data"]  # embedded

    mine = {"training_data": {"name": "espeak-ng clips", "licence": "GPL-3.0 voices"},
            "intended_use": "a test", "limitations": ["synthetic voices only"],
            "metrics": [{"name": "recall", "value": 0.5, "data": "my recordings"}]}
    (tmp_path / "card.json").write_text(json.dumps(mine))
    assert main(["export", str(run_dir), "--out", str(out), "--check-clips", "4",
                 "--card", str(tmp_path / "card.json")]) == 0
    card = json.loads(card_path(out).read_text())
    assert card["training_data"] == mine["training_data"]
    assert card["intended_use"] == "a test"
    assert card["limitations"] == ["synthetic voices only", UNCALIBRATED]
    assert card["metrics"][1:] == mine["metrics"] and "validation" in card["metrics"][0]["data"]
    write_thresholds(out, {"thresholds": {"yes": 0.9}, "calibration": {"note": "test"}})
    assert json.loads(card_path(out).read_text())["limitations"] == ["synthetic voices only"]

    fresh = tmp_path / "fresh.onnx"
    for content, message in (("[1, 2]", "must hold a JSON object"),
                             ('{"licence": "x"}', "unknown field(s) licence"),
                             ('{"limitations": "x"}', "limitations must be a list"),
                             ("{not json", "not a readable JSON file")):
        (tmp_path / "bad.json").write_text(content)
        assert main(["export", str(run_dir), "--out", str(fresh),
                     "--card", str(tmp_path / "bad.json")]) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert main(["export", "shipped", "--out", str(fresh), "--card",
                 str(tmp_path / "card.json")]) == 1
    assert "keeps its own card" in capsys.readouterr().err
    assert not fresh.exists()


def test_training_data_of_a_speech_commands_folder_names_its_licence(tmp_path: Path) -> None:
    from kwspot.export.documentation import SPEECH_COMMANDS_ATTRIBUTION, training_data_of

    root = tmp_path / "sc"
    root.mkdir()
    for name in ("validation_list.txt", "testing_list.txt"):
        (root / name).write_text("")
    data = training_data_of({"data": {"path": str(root), "negatives": ["/n"]}})
    assert "CC BY 4.0" in data["licence"] and data["attribution"] == SPEECH_COMMANDS_ATTRIBUTION
    assert data["negatives"]["folders"] == ["/n"]
    assert training_data_of({})["name"].startswith("unknown")


def test_weights_shared_by_two_graphs_are_stored_once_and_stay_so(tmp_path: Path) -> None:
    """share_weights: tensors two graphs hold byte for byte go to one file both reference;
    outputs are unchanged, and writing the card afterwards does not inline them again. The
    packaged embedding model is stored that way (no packaged file over 3 MB)."""
    from kwspot.export import export_module
    from kwspot.fileio import share_weights
    from kwspot.runtime.model import onnx_session, pretrained_path

    torch.manual_seed(0)
    shared = torch.nn.Linear(64, 64)
    one, two = torch.nn.Sequential(shared, torch.nn.ReLU()), torch.nn.Sequential(
        shared, torch.nn.Tanh(), torch.nn.Linear(64, 3))
    x = torch.randn(2, 64)
    paths = [tmp_path / "one.onnx", tmp_path / "two.onnx"]
    for module, path in zip((one, two), paths, strict=True):
        export_module(module.eval(), x, path, "x", "y")
    before = [onnx_session(p, 1).run(None, {"x": x.numpy()})[0] for p in paths]
    sizes = [p.stat().st_size for p in paths]
    written = share_weights(paths, tmp_path / "shared.weights")
    assert written >= 64 * 64 * 4 and (tmp_path / "shared.weights").stat().st_size == written
    assert all(p.stat().st_size < s - 64 * 64 * 4 + 1024 for p, s in zip(paths, sizes,
                                                                         strict=True))
    for path, expected in zip(paths, before, strict=True):
        np.testing.assert_array_equal(onnx_session(path, 1).run(None, {"x": x.numpy()})[0],
                                      expected)
    from kwspot.fileio import write_card
    small = paths[0].stat().st_size
    write_card({"labels": ["a"]}, paths[0])
    assert paths[0].stat().st_size < small + 200  # the card only, no weights inlined
    packaged = pretrained_path().parent
    assert max(p.stat().st_size for p in packaged.iterdir()) < 3_000_000
