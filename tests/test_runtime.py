"""The runtime as a deployment sees it: importable without torch, files decoded in blocks,
stdin, many independent streams, and the numpy front end equal to the training one."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from kwspot.audio import iter_audio_blocks, load_audio
from kwspot.features import FeatureConfig, Frontend
from kwspot.runtime import Detector, DetectorConfig, OnnxKeywordModel
from kwspot.runtime.frontend import NumpyFrontend

RATE = 16000


def test_import_kwspot_and_make_a_detector_without_torch(tiny_onnx: Path) -> None:
    code = (
        "import sys, numpy as np, kwspot\n"
        f"d = kwspot.Detector({str(tiny_onnx)!r})\n"
        "d.push(np.zeros(16000, np.float32))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_cli_help_does_not_import_torch() -> None:
    code = ("import sys\nfrom kwspot.cli import build_parser\nbuild_parser()\n"
            "assert 'torch' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("kind", ["mfcc", "logmel"])
@pytest.mark.parametrize("chunk", [1, 100, 160, 479, 4000])
def test_numpy_frontend_equals_training_frontend(kind: str, chunk: int) -> None:
    cfg = FeatureConfig(kind=kind)
    rng = np.random.default_rng(1)
    audio = (rng.standard_normal(RATE * 2) * 0.1).astype(np.float32)
    audio[: RATE // 2] = 0  # digital silence: the log floor
    expected = Frontend(cfg)(torch.from_numpy(audio)[None])[0].numpy()
    assert np.abs(NumpyFrontend(cfg).frames(audio) - expected).max() < 1e-4
    streaming = NumpyFrontend(cfg)
    frames = np.concatenate([streaming.push(audio[i : i + chunk])
                             for i in range(0, len(audio), chunk)], axis=1)
    assert frames.shape == expected.shape
    assert np.abs(frames - expected).max() < 1e-4


@pytest.mark.parametrize("rate,channels", [(16000, 1), (44100, 2), (8000, 1)])
def test_block_decoding_equals_whole_file_decoding(tmp_path: Path, rate: int,
                                                   channels: int) -> None:
    rng = np.random.default_rng(2)
    data = rng.uniform(-0.5, 0.5, (rate * 3 + 17, channels))
    path = tmp_path / "x.flac"
    sf.write(str(path), data, rate)
    whole = load_audio(path)
    blocks = np.concatenate(list(iter_audio_blocks(path, block_seconds=0.7)))
    assert abs(len(blocks) - len(whole)) <= 2
    n = min(len(blocks), len(whole))
    # soxr's streaming and one-shot resamplers agree away from the very ends
    assert np.abs(blocks[100 : n - 100] - whole[100 : n - 100]).max() < 1e-3


def test_detect_reads_wav_from_stdin(tiny_onnx: Path) -> None:
    from kwspot.datasets.espeak import random_style
    from kwspot.datasets.synth import render_utterance

    rng = np.random.default_rng(7)
    audio, _ = render_utterance([1.0, "stop", 1.0], rng, style=random_style(rng))
    buffer = io.BytesIO()
    sf.write(buffer, audio, RATE, format="WAV", subtype="PCM_16")
    out = subprocess.run([sys.executable, "-m", "kwspot.cli", "detect", "-", "--model",
                          str(tiny_onnx), "--threshold", "0.6", "--json"],
                         input=buffer.getvalue(), capture_output=True, check=False)
    assert out.returncode == 0, out.stderr
    assert b'"keyword": "stop"' in out.stdout


def test_detect_reads_flac_and_nothing_from_a_pipe(tiny_onnx: Path) -> None:
    """A pipe that is not WAV (FLAC needs seeking) is read whole first and decoded like a
    file; an empty pipe is one clear line."""
    from kwspot.datasets.espeak import random_style
    from kwspot.datasets.synth import render_utterance

    rng = np.random.default_rng(7)
    audio, _ = render_utterance([1.0, "stop", 1.0], rng, style=random_style(rng))
    buffer = io.BytesIO()
    sf.write(buffer, audio, RATE, format="FLAC")
    command = [sys.executable, "-m", "kwspot.cli", "detect", "-", "--model", str(tiny_onnx),
               "--threshold", "0.6", "--json"]
    out = subprocess.run(command, input=buffer.getvalue(), capture_output=True, check=False)
    assert out.returncode == 0, out.stderr
    assert b'"keyword": "stop"' in out.stdout
    empty = subprocess.run(command, input=b"", capture_output=True, check=False)
    assert empty.returncode == 1 and b"no audio arrived" in empty.stderr, empty.stderr


def test_detect_on_a_live_pipe_prints_before_the_stream_ends(tiny_onnx: Path) -> None:
    """`recorder | kwspot detect -`: the header says a minute, three seconds have arrived and
    the pipe is still open; the event must already be printed. Closing the pipe early ends
    the stream cleanly."""
    import select

    from kwspot.datasets.espeak import random_style
    from kwspot.datasets.synth import render_utterance

    rng = np.random.default_rng(7)
    audio, _ = render_utterance([1.0, "stop", 1.0], rng, style=random_style(rng))
    minute = np.zeros(60 * RATE, np.float32)
    minute[: len(audio)] = audio
    buffer = io.BytesIO()
    sf.write(buffer, minute, RATE, format="WAV", subtype="PCM_16")
    sent = buffer.getvalue()[: 44 + 2 * (len(audio) + RATE)]
    proc = subprocess.Popen([sys.executable, "-m", "kwspot.cli", "detect", "-", "--model",
                             str(tiny_onnx), "--threshold", "0.6", "--json"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(sent)
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        assert ready, "no event while the pipe was open"
        assert json.loads(proc.stdout.readline())["keyword"] == "stop"
        proc.stdin.close()
        assert proc.wait(60) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        proc.kill()


def test_many_streams_are_independent(tiny_onnx: Path) -> None:
    """Interleaved 20 ms chunks of many streams give each stream what it gets alone."""
    model = OnnxKeywordModel(tiny_onnx)
    cfg = DetectorConfig(threshold=0.5)
    rng = np.random.default_rng(3)
    streams = [(rng.standard_normal(RATE * 3) * rng.uniform(0.01, 0.3)).astype(np.float32)
               for _ in range(6)]
    alone = []
    for audio in streams:
        d = Detector(model, cfg)
        alone.append(d.score_track(audio)[1])
    together = [Detector(model, cfg) for _ in streams]
    tracks: list[list[np.ndarray]] = [[] for _ in streams]
    for i in range(0, RATE * 3, RATE // 50):
        for d, audio, track in zip(together, streams, tracks, strict=True):
            track.append(d.score_track(audio[i : i + RATE // 50])[1])
    for track, expected in zip(tracks, alone, strict=True):
        np.testing.assert_allclose(np.concatenate(track), expected, atol=1e-6)


def test_export_writes_the_network_graph_and_card(tiny_onnx: Path) -> None:
    import json

    card = json.loads(tiny_onnx.with_suffix(".json").read_text())
    assert (tiny_onnx.parent / card["network"]["file"]).is_file()
    assert card["parity"]["max_abs_diff"] <= 1e-4
    assert OnnxKeywordModel(tiny_onnx).network is not None
