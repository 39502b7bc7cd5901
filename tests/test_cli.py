"""The command line: every option explained, one-line errors, and each subcommand doing its job."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kwspot.audio import save_audio
from kwspot.cli import build_parser, main

SUBCOMMANDS = ("train", "eval", "export", "detect", "listen", "bench", "synth", "negatives",
               "streams", "eval-stream", "calibrate", "mine", "demo")


def test_every_subcommand_and_option_has_help() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(SUBCOMMANDS) <= set(sub.choices)
    for name, subparser in sub.choices.items():
        assert subparser.description, f"{name} has no description"
        for action in subparser._actions:
            assert action.help, f"kwspot {name} {action.option_strings or action.dest}: no help"


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_exits_cleanly(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: kwspot " + command in capsys.readouterr().out


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("kwspot: error:")]
    assert lines, err
    return lines[0]


def test_missing_file_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.wav"
    assert main(["detect", str(missing)]) == 1
    line = _one_line_error(capsys)
    assert "nope.wav" in line and "no such file" in line


def test_corrupt_and_empty_wavs_are_named(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "junk.wav").write_text("this is not audio")
    assert main(["detect", str(tmp_path / "empty.wav"), str(tmp_path / "junk.wav")]) == 1
    err = capsys.readouterr().err
    assert "empty.wav: file is empty" in err and "junk.wav: cannot decode audio" in err
    assert "Traceback" not in err


def test_missing_dataset_and_debug_traceback(tmp_path: Path, capsys) -> None:
    args = ["train", "--data", str(tmp_path / "none"), "--run-dir", str(tmp_path / "run")]
    assert main(args) == 1
    assert "dataset not found" in _one_line_error(capsys)
    from kwspot.errors import KwspotError

    with pytest.raises(KwspotError):
        main(["--debug", *args])


def test_eval_writes_report_and_confusion(tiny_run, tiny_dataset: Path, tmp_path: Path,
                                          capsys) -> None:
    run_dir, summary = tiny_run
    out = tmp_path / "eval"
    assert main(["eval", str(run_dir), "--data", str(tiny_dataset), "--keywords", "yes,no,stop",
                 "--unknown-fraction", "0.3", "--split", "test", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-9)
    assert report["labels"] == summary["labels"]
    confusion = np.array(report["confusion"])
    assert confusion.sum() == report["examples"] == summary["test_clips"]
    for label, m in report["per_class"].items():
        assert 0.0 <= m["precision"] <= 1.0 and 0.0 <= m["recall"] <= 1.0, label
    assert (out / "confusion.png").stat().st_size > 10_000
    assert "accuracy" in capsys.readouterr().out


def test_eval_onnx_equals_eval_checkpoint(tiny_run, tiny_onnx: Path, tiny_dataset: Path,
                                          tmp_path: Path) -> None:
    common = ["--data", str(tiny_dataset), "--keywords", "yes,no,stop", "--unknown-fraction",
              "0.3", "--split", "test"]
    assert main(["eval", str(tiny_run[0] / "best.pt"), *common, "--out", str(tmp_path / "a")]) == 0
    assert main(["eval", str(tiny_onnx), *common, "--out", str(tmp_path / "b")]) == 0
    a = json.loads((tmp_path / "a" / "report.json").read_text())
    b = json.loads((tmp_path / "b" / "report.json").read_text())
    assert a["confusion"] == b["confusion"]


def test_export_and_detect_commands(tiny_run, tiny_dataset: Path, tmp_path: Path,
                                    capsys) -> None:
    from kwspot.datasets.espeak import random_style
    from kwspot.datasets.synth import render_utterance

    onnx_path = tmp_path / "m.onnx"
    assert main(["export", str(tiny_run[0]), "--out", str(onnx_path), "--check-data",
                 str(tiny_dataset / "yes")]) == 0
    assert onnx_path.is_file() and onnx_path.with_suffix(".json").is_file()
    # five voices saying "stop": the 300-step tiny model must find most of them (a pipeline
    # check, not an accuracy figure, so one unlucky voice does not decide it)
    found = 0
    for seed in (3, 4, 5, 6, 7):
        rng = np.random.default_rng(seed)
        audio, spans = render_utterance([1.0, "stop", 1.0], rng, style=random_style(rng),
                                        noise_snr_db=None)
        wav = tmp_path / f"stop{seed}.wav"
        save_audio(wav, audio)
        capsys.readouterr()
        assert main(["detect", str(wav), "--model", str(onnx_path), "--threshold", "0.5",
                     "--json"]) == 0
        events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        centre = (spans[0][1] + spans[0][2]) / 2
        found += any(e["keyword"] == "stop" and abs(e["time_s"] - centre) < 0.5
                     for e in events)
    assert found >= 3


def test_bench_reports_counted_flops_and_measured_latency(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", "--model", "tc-resnet8", "--runs", "30", "--warmup", "5",
                 "--json", str(out)]) == 0
    (result,) = json.loads(out.read_text())
    assert result["params"] == 65_148 and result["flops"] == 3_045_120
    from kwspot.bench import tflite_available

    cases = {(t["engine"], t["inputs"]) for t in result["timings"]}
    engines = ("pytorch", "onnxruntime", "onnxruntime-int8") + (
        ("tflite", "tflite-int8") if tflite_available() else ())
    assert cases == {(e, i) for e in engines for i in ("audio", "features")}
    for t in result["timings"]:
        assert 0 < t["median_ms"] <= t["p90_ms"] < 1000 and t["runs"] == 30


def test_synth_command_writes_dataset(tmp_path: Path, capsys) -> None:
    out = tmp_path / "synth"
    assert main(["synth", "--words", "hey kwspot,stop", "--out", str(out),
                 "--clips-per-word", "3"]) == 0
    assert len(list((out / "hey_kwspot").glob("*.wav"))) == 3
    assert len(list((out / "stop").glob("*.wav"))) == 3
    assert "wrote 6 clips" in capsys.readouterr().out


def test_demo_runs_every_stage(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--steps", "40", "--clips-per-word", "20"]) == 0
    text = capsys.readouterr().out
    for stage in ("[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]", "done in"):
        assert stage in text
    for path in ("run/best.pt", "eval/report.json", "eval/confusion.png",
                 "export/tc-resnet8-demo.onnx", "export/tc-resnet8-demo.json", "sentence.wav"):
        assert (out / path).is_file(), path
    # it refuses to wipe a folder it did not make
    other = tmp_path / "mine"
    other.mkdir()
    (other / "precious.txt").write_text("keep")
    assert main(["demo", "--out", str(other)]) == 1
    assert (other / "precious.txt").read_text() == "keep"


def test_eval_defaults_to_the_models_training_seed(tiny_run, tiny_onnx: Path,
                                                   tmp_path: Path) -> None:
    import torch

    from kwspot.evaluate import load_scorer

    run_dir, _summary = tiny_run
    assert load_scorer(run_dir / "best.pt").training_seed == 0
    assert load_scorer(tiny_onnx).training_seed == 0  # read from the ONNX model card
    record = torch.load(run_dir / "best.pt", weights_only=False)
    record["config"]["data"]["seed"] = 7
    torch.save(record, tmp_path / "seed7.pt")
    assert load_scorer(tmp_path / "seed7.pt").training_seed == 7


def test_listen_without_an_audio_system_says_so_in_one_line(capsys) -> None:
    assert main(["listen", "--seconds", "0.1"]) == 1
    err = _one_line_error(capsys)
    assert "sounddevice" in err or "audio" in err


def test_unknown_model_name_is_one_line_listing_the_choices(capsys) -> None:
    assert main(["train", "--data", ".", "--model", "resnet-9000"]) == 1
    assert "tc-resnet8" in _one_line_error(capsys)


def test_eval_stream_calibrate_and_detect_use_the_card(tiny_onnx: Path, tmp_path: Path,
                                                        capsys) -> None:
    """The whole always-on loop on a synthesized stream: eval-stream writes its report,
    calibrate writes thresholds into the card, and detect then uses them."""
    import shutil

    from kwspot.datasets.espeak import random_style
    from kwspot.datasets.streams import TRUTH_FORMAT
    from kwspot.datasets.synth import render_utterance

    for f in tiny_onnx.parent.glob(tiny_onnx.stem + "*"):
        shutil.copy(f, tmp_path / f.name)
    model = tmp_path / tiny_onnx.name
    rng = np.random.default_rng(5)
    audio, spans = render_utterance([1.0, "stop", 1.2, "tree", 1.0, "yes", 1.2, "house", 1.0],
                                    rng, style=random_style(rng))
    wav = tmp_path / "stream.wav"
    save_audio(wav, audio)
    truth = {"format": TRUTH_FORMAT, "audio": wav.name, "sample_rate": 16000,
             "duration_s": len(audio) / 16000, "split": "validation",
             "events": [{"keyword": w, "start": a, "end": b} for w, a, b in spans
                        if w in ("stop", "yes")],
             "negatives": [{"kind": "tts", "label": w, "start": a, "end": b}
                           for w, a, b in spans if w not in ("stop", "yes")]}
    wav.with_suffix(".json").write_text(json.dumps(truth))
    out = tmp_path / "report"
    assert main(["eval-stream", str(model), str(wav), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["default_thresholds"]["keywords_in_truth"] == 2
    assert (out / "report.html").read_text().count("data:image/png;base64") == 2
    assert "FA/h" in capsys.readouterr().out
    assert main(["calibrate", str(model), str(wav), "--target-fa-per-hour", "5"]) == 0
    card = json.loads(model.with_suffix(".json").read_text())
    assert set(card["thresholds"]) == {k for k in card["labels"] if not k.startswith("_")}
    assert card["calibration"]["target_fa_per_hour"] == 5


def test_version_and_empty_words(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.startswith("kwspot 0.")
    assert main(["synth", "--words", " , ", "--out", "x"]) == 1
    assert "--words" in _one_line_error(capsys)
    assert main(["train", "--data", ".", "--steps", "-5"]) == 1
    assert "--steps" in _one_line_error(capsys)


def test_full_disk_and_unusable_run_folder_are_one_line_errors(tiny_dataset: Path, tmp_path: Path,
                                                                monkeypatch, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    args = ["train", "--data", str(tiny_dataset), "--keywords", "yes,no,stop", "--steps", "2",
            "--eval-every", "1", "--batch-size", "8", "--threads", "1", "--quiet"]
    assert main([*args, "--run-dir", str(blocker / "run")]) == 1
    assert "a-file" in _one_line_error(capsys)

    import torch

    def full(*_args, **_kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "run" / "best.pt.tmp"))

    monkeypatch.setattr(torch, "save", full)
    assert main([*args, "--run-dir", str(tmp_path / "run")]) == 1
    assert "No space left on device" in _one_line_error(capsys)
    assert not list((tmp_path / "run").glob("*.tmp"))  # no partial file left behind


def _unprivileged(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run the CLI as a user that file permissions apply to (root ignores them: drop to
    nobody with setpriv when the tests run as root, as in CI)."""
    import os

    command = [sys.executable, "-m", "kwspot.cli", *args]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root and setpriv is not installed")
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    env = {**os.environ, "HOME": str(cwd)}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, check=False)


def test_permission_denied_is_one_line_naming_the_path(tone_wav) -> None:
    """Real EACCES (not a mock): an unreadable file, an unreadable dataset folder and a run
    folder that cannot be written each give 'kwspot: error: PATH: ...' and no traceback."""
    import os
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="kwspot-perm-"))
    try:
        root.chmod(0o777)
        probe = _unprivileged(["--version"], root)
        if probe.returncode != 0:
            pytest.skip(f"the unprivileged user cannot run this checkout: {probe.stderr[-200:]}")
        data = root / "data"
        for label in ("yes", "no"):
            (data / label).mkdir(parents=True)
            shutil.copy(tone_wav(f"{label}.wav"), data / label / "spk_nohash_0.wav")
        secret = root / "secret.wav"
        shutil.copy(tone_wav("secret.wav"), secret)
        secret.chmod(0)
        read_only = root / "read-only"
        read_only.mkdir()
        read_only.chmod(0o555)

        def error_lines(args: list[str]) -> list[str]:
            run = _unprivileged(args, root)
            assert run.returncode == 1, run.stderr
            assert "Traceback" not in run.stderr
            lines = [line for line in run.stderr.splitlines() if line]
            assert all(line.startswith("kwspot: error: ") for line in lines), lines
            return lines

        lines = error_lines(["detect", "secret.wav"])
        assert lines[0] == "kwspot: error: secret.wav: permission denied"
        train = ["train", "--keywords", "yes,no", "--steps", "2", "--threads", "1", "--quiet"]
        lines = error_lines([*train, "--data", "data", "--run-dir", "read-only/run"])
        assert lines == ["kwspot: error: read-only/run: Permission denied"]
        assert os.listdir(read_only) == []
        data.chmod(0)
        lines = error_lines([*train, "--data", "data", "--run-dir", "run"])
        assert len(lines) == 1 and "data/" in lines[0] and "Permission denied" in lines[0]
    finally:
        for path in (root / "data", root / "read-only"):
            if path.exists():
                path.chmod(0o755)
        shutil.rmtree(root, ignore_errors=True)
