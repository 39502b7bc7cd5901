"""The clips int8 quantization is calibrated on: a seeded draw of training clips from a run's
manifest, and the log of it the card keeps (enough to redraw the same clips and check they
were). Shared by the ONNX and the TFLite int8 exports."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kwspot.errors import KwspotError


def calibration_clips(manifest: str | Path, count: int = 300, seed: int = 0,
                      clip_samples: int = 16000,
                      sample_rate: int = 16000) -> tuple[np.ndarray, list[str]]:
    """``count`` training clips drawn with ``seed`` from a run's manifest or prepared data
    (train split, real files only), decoded to (count, clip_samples), and their paths for the
    log. ``manifest`` may also be a dataset (folder or CSV), read with its default recipe."""
    from kwspot.clips import decode_clips
    from kwspot.datasets import DataConfig, open_dataset

    utterances = open_dataset(DataConfig(path=str(manifest))).utterances
    rows = [u for u in utterances if u.split == "train" and u.path]
    if not rows:
        raise KwspotError(f"{manifest}: no training clips to calibrate int8 quantization on")
    picked = np.random.default_rng(seed).choice(len(rows), min(count, len(rows)), replace=False)
    table = decode_clips([rows[i] for i in sorted(picked)], clip_samples, sample_rate)
    if table.bad_files:
        raise KwspotError(f"calibration clip unreadable: {table.bad_files[0]}")
    return table.audio, [str(u.path) for u in table.utterances]


def calibration_log(paths: Sequence[str], seed: int, source: str) -> dict[str, Any]:
    """What the card records: enough to redraw the same clips and to check they were."""
    digest = hashlib.sha256("\n".join(paths).encode()).hexdigest()
    return {"clips": len(paths), "seed": seed, "source": source, "paths_sha256": digest}
