"""``kwspot verify-export``: is the exported model the model that was trained?

Runs the exported file on a test split beside the PyTorch checkpoint it came from, and reports
both accuracies, the largest posterior difference, the file size and the latency (median and
p90 over single-clip runs on one thread), so a float or int8 export is judged on data, not
trusted.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kwspot.evaluate.clips import evaluation_clips, load_scorer

if TYPE_CHECKING:
    from kwspot.datasets import DataConfig


def model_files(path: Path) -> list[Path]:
    """The files a deployment copies: the model, its card, and the graphs the card names
    (network, incremental stream, speech embedding)."""
    from kwspot.runtime.model import card_path, read_card

    files = [path, card_path(path)]
    if card_path(path).is_file():
        card = read_card(card_path(path))
        for key in ("network", "stream", "embedding"):
            entry = card.get(key)
            if isinstance(entry, dict) and isinstance(entry.get("file"), str):
                files.append(path.parent / entry["file"])
    return [f for f in files if f.exists()]


def single_clip_latency(model_path: Path, clip: np.ndarray, runs: int,
                        warmup: int = 50) -> tuple[float, float]:
    """Median and p90 milliseconds of one audio-in call on one thread (``kwspot bench``'s
    timer)."""
    from kwspot.bench import time_calls
    from kwspot.runtime.model import load_keyword_model

    model = load_keyword_model(model_path, threads=1)
    clip = np.ascontiguousarray(clip[None], dtype=np.float32)
    return time_calls(lambda: model.posteriors(clip), runs, warmup)


def verify_export(model_path: str | Path, data: DataConfig, split: str = "test",
                  checkpoint: str | Path | None = None, runs: int = 1000,
                  seed: int | None = None) -> dict[str, Any]:
    """Accuracy of the export (and of ``checkpoint``, on the very same clips), the largest
    posterior difference between them, size in bytes and single-thread latency."""
    from kwspot.runtime.model import resolve_shipped

    # the model verified is always an export: "shipped" is the packaged ONNX file here (as a
    # checkpoint elsewhere, it would be compared with itself)
    model_path = resolve_shipped(model_path)
    exported = load_scorer(model_path)
    if seed is None:
        seed = exported.training_seed if exported.training_seed is not None else 0
    clips, _ = evaluation_clips(exported.labels, exported.window_samples, exported.sample_rate,
                                data, split, seed, exported.pad)
    got = exported.score(clips.audio)
    result: dict[str, Any] = {
        "model": str(model_path), "data": str(data.path), "split": split, "seed": seed,
        "data_checksum": clips.data_checksum,
        "clips": len(clips), "bad_files": len(clips.bad_files),
        "accuracy": float((got.argmax(1) == clips.targets).mean()),
        "size_bytes": {f.name: f.stat().st_size for f in model_files(model_path)},
    }
    if checkpoint is not None:
        reference = load_scorer(checkpoint)
        if reference.labels != exported.labels:
            from kwspot.errors import KwspotError

            raise KwspotError(f"{checkpoint} has labels {reference.labels}, the export "
                              f"{exported.labels}: not the same model")
        expected = reference.score(clips.audio)
        result["checkpoint"] = str(checkpoint)
        result["checkpoint_accuracy"] = float((expected.argmax(1) == clips.targets).mean())
        result["max_abs_diff"] = float(np.abs(expected - got).max())
        result["argmax_agreement"] = float((expected.argmax(1) == got.argmax(1)).mean())
    median, p90 = single_clip_latency(model_path, clips.audio[0], runs)
    result["latency_ms"] = {"median": median, "p90": p90, "runs": runs, "threads": 1,
                            "input": "one clip of raw audio (features inside the graph)"}
    return result
