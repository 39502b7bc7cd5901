"""Shared fixtures: the read-only real-data folder beside the project, and generated WAV files.

Real data lives in ``../shared/data`` (relative to the project root) and is never copied into the
repository. Set ``KWSPOT_SHARED_DATA`` to point elsewhere. Tests that need it either take the
``shared_data`` / ``shared_dataset`` fixtures or carry ``@pytest.mark.needs_shared_data``; all of
them skip cleanly when the folder is absent.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

# deterministic cuBLAS for the CUDA resume test; read once, at the first cuBLAS call
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import numpy as np
import pytest
import soundfile as sf

DEFAULT_SHARED_DATA = Path(__file__).parents[1].parent / "shared" / "data"


def shared_data_path() -> Path:
    """Where the shared data is expected: $KWSPOT_SHARED_DATA, else ``<project>/../shared/data``."""
    override = os.environ.get("KWSPOT_SHARED_DATA")
    return Path(override).expanduser() if override else DEFAULT_SHARED_DATA


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "needs_shared_data: needs the real data in ../shared/data; skipped if absent"
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("needs_shared_data") and not shared_data_path().is_dir():
        pytest.skip(f"shared data not found at {shared_data_path()}")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data root; the test is skipped when it does not exist."""
    root = shared_data_path()
    if not root.is_dir():
        pytest.skip(f"shared data not found at {root}")
    return root


@pytest.fixture(scope="session")
def shared_dataset(shared_data: Path) -> Callable[[str], Path]:
    """``shared_dataset("fsdd/recordings")`` -> that sub-folder, or skip when it is missing."""

    def get(name: str) -> Path:
        path = shared_data / name
        if not path.exists():
            pytest.skip(f"{name} not found in shared data at {shared_data}")
        return path

    return get


@pytest.fixture
def one_torch_thread():
    """Timing-free but thread-sensitive model tests run on one torch thread, then restore."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def sine(
    freq: float = 1000.0, rate: int = 16000, seconds: float = 1.0, amplitude: float = 0.5
) -> np.ndarray:
    """A float64 sine of ``round(rate * seconds)`` samples."""
    t = np.arange(round(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)


ToneWav = Callable[..., Path]


@pytest.fixture
def tone_wav(tmp_path: Path) -> ToneWav:
    """Factory writing a small generated sound file under ``tmp_path`` and returning its path.

    ``tone_wav(name="tone.wav", freq=1000, rate=16000, seconds=1.0, channels=1,
    subtype="PCM_16", amplitude=0.5, data=None, fmt=None)``: with ``data`` (shape (S,) or
    (S, C)) that signal is written instead of a sine; otherwise every channel holds the sine,
    channel c scaled by 1 / (c + 1) so that channels differ. ``fmt`` (a soundfile format)
    defaults to the one the suffix names.
    """

    def make(
        name: str = "tone.wav",
        freq: float = 1000.0,
        rate: int = 16000,
        seconds: float = 1.0,
        channels: int = 1,
        subtype: str | None = "PCM_16",
        amplitude: float = 0.5,
        data: np.ndarray | None = None,
        fmt: str | None = None,
    ) -> Path:
        if data is None:
            mono = sine(freq, rate, seconds, amplitude)
            data = (
                mono
                if channels == 1
                else np.stack([mono / (c + 1) for c in range(channels)], axis=1)
            )
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), data, rate, subtype=subtype, format=fmt)
        return path

    return make


# --- a tiny synthetic keyword task, trained once per test session ------------------------------

TINY_KEYWORDS = ("yes", "no", "stop")
TINY_OTHER = ("tree", "house", "bird")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder-per-label dataset spoken by espeak-ng: 3 keywords and 3 other words."""
    from kwspot.datasets.synth import synthesize_dataset

    root = tmp_path_factory.mktemp("tiny") / "data"
    synthesize_dataset(list(TINY_KEYWORDS), root, clips_per_word=150, seed=1)
    synthesize_dataset(list(TINY_OTHER), root, clips_per_word=60, seed=2)
    return root


def tiny_train_config(data_path: Path, steps: int = 300, **changes: object):
    import dataclasses

    from kwspot.datasets import DataConfig
    from kwspot.training.config import OptimConfig, TrainConfig

    data = DataConfig(path=str(data_path), keywords=TINY_KEYWORDS, unknown_fraction=0.3)
    optim = dataclasses.replace(OptimConfig(batch_size=50), steps=30_000).scaled_to(steps)
    return TrainConfig(data=data, optim=optim, eval_every=100, seed=0, threads=2, **changes)


@pytest.fixture(scope="session")
def tiny_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """TC-ResNet8 trained 300 steps on the tiny dataset: (run_dir, summary)."""
    from kwspot.training.loop import train

    run_dir = tmp_path_factory.mktemp("tiny-run") / "run"
    summary = train(tiny_train_config(tiny_dataset), run_dir, quiet=True)
    return run_dir, summary


@pytest.fixture(scope="session")
def tiny_onnx(tiny_run: tuple[Path, dict], tiny_dataset: Path) -> Path:
    from kwspot.checkpoint import load_classifier
    from kwspot.export import export_onnx, parity_clips

    run_dir, _ = tiny_run
    model, record = load_classifier(run_dir / "best.pt")
    path = run_dir / "export" / "tiny.onnx"
    export_onnx(model, path, parity_clips(tiny_dataset, 16, 16000), record)
    return path


@pytest.fixture(scope="session")
def keyword_in_tap_noise(shared_dataset: Callable[[str], Path]) -> Callable[[str], np.ndarray]:
    """``keyword_in_tap_noise("yes")``: 8 s of running-tap noise (at 0.05) with a real test
    clip of the word added at 4-5 s (its centre near 4.5 s); skipped without the data."""
    from kwspot.audio import load_audio

    clips = shared_dataset("speech_commands_lite_test")
    noise = load_audio(shared_dataset("speech_commands_lite/_background_noise_") /
                       "running_tap.wav")[: 8 * 16000] * 0.05

    def make(word: str) -> np.ndarray:
        clip = load_audio(sorted((clips / word).glob("*.wav"))[3])
        audio = noise.copy()
        audio[4 * 16000 : 4 * 16000 + len(clip)] += clip
        return audio

    return make
