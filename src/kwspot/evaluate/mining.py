"""Hard-negative mining: run a model over long TRAINING streams, and save the 1 s windows where
it fires although no keyword was said. Retraining (or fine-tuning with ``--init``) with them as
``_unknown_`` (``kwspot train --negatives DIR``) teaches the model exactly the confusions it
makes. Windows that overlap a true keyword are never kept: they would be mislabelled.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from kwspot.audio import save_audio
from kwspot.datasets.streams import read_truth
from kwspot.errors import KwspotError
from kwspot.evaluate.streams import replay, score_stream
from kwspot.runtime.detector import Detector, DetectorConfig


def training_stream(stream: str | Path) -> tuple[Path, dict[str, Any]]:
    """A stream's audio and truth, refused unless it was built from the training split:
    mining validation or test audio would leak it into training."""
    wav, truth = read_truth(stream)
    if truth.get("split") != "train":
        raise KwspotError(f"{stream}: mine only training streams (this one is "
                          f"{truth.get('split')!r}); validation and test must stay unseen")
    return wav, truth


def mine_hard_negatives(model: str | Path | None, streams: Sequence[str | Path],
                        out_dir: str | Path, threshold: float = 0.5,
                        shifts_s: Sequence[float] = (-0.15, 0.0, 0.15),
                        config: DetectorConfig | None = None) -> dict[str, Any]:
    """Write ``<out_dir>/<stream>_<time>_<shift>.wav`` for every false event; returns counts."""
    if not 0 < threshold <= 1:
        raise KwspotError("--threshold must be in (0, 1]")
    detector = Detector(model, config)
    out = Path(out_dir)
    rate = detector.model.sample_rate
    window = detector.window
    counts: Counter = Counter()
    for stream in streams:
        wav, truth = training_stream(stream)
        scored = score_stream(detector, stream)
        spans = [(e["start"], e["end"]) for e in truth["events"]]
        thresholds = np.full(len(detector.keywords), threshold)
        with sf.SoundFile(str(wav)) as audio:
            for index, end_s in replay(scored, thresholds, detector.config.refractory_ms / 1000):
                start_s = end_s - window / rate
                if any(s < end_s + 0.2 and e > start_s - 0.2 for s, e in spans):
                    counts["skipped: overlaps a keyword"] += 1
                    continue
                for shift in shifts_s:
                    first = round((start_s + shift) * rate)
                    if first < 0 or first + window > audio.frames:
                        continue
                    audio.seek(first)
                    clip = audio.read(window, dtype="float32")
                    name = (f"{Path(wav).parent.name}_{Path(wav).stem}_{end_s:09.2f}_"
                            f"{shift:+.2f}.wav")
                    save_audio(out / detector.keywords[index] / name, clip, rate)
                    counts["clips"] += 1
                counts[f"fired as {detector.keywords[index]}"] += 1
    return dict(counts)
