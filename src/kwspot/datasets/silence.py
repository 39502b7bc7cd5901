"""The recipe's evaluation ``_silence_`` clips, resolved once into named noise segments.

Validation and test silence used to be drawn from the noise at evaluation time with a seed; a
resolved row says which recording, where and how loud (``path``, ``start_s``, ``gain``), so a
prepared manifest fixes them and every model is scored on the very same clips.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import soundfile as sf

from kwspot.data import NOISE_SPEAKER, SILENCE, SPLITS, Utterance
from kwspot.errors import KwspotError

# The longest window a silence segment is cut for; longer windows tile the recording.
SEGMENT_SECONDS = 1.0
EVAL_SPLITS = ("validation", "test")


def noise_durations(paths: Sequence[str]) -> list[float]:
    out = []
    for path in paths:
        try:
            out.append(sf.info(path).duration)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise KwspotError(f"{path}: unreadable noise file ({exc})") from None
    return out


def resolve_silence(rows: Sequence[Utterance], noise_paths: Sequence[str],
                    seed: int) -> list[Utterance]:
    """Turn validation/test ``_silence_`` placeholders into fixed noise segments at a volume of
    U[0, 1] (the Speech Commands recipe's silence). Training silence stays a placeholder: it
    is drawn afresh every batch. One generator per split, as for the unknown draw."""
    if not noise_paths:
        return list(rows)
    durations = noise_durations(noise_paths)
    out = list(rows)
    for split in EVAL_SPLITS:
        where = [i for i, u in enumerate(out)
                 if u.split == split and u.label == SILENCE and u.path is None]
        rng = np.random.default_rng([seed, len(SPLITS) + SPLITS.index(split)])
        for i in where:
            pick = int(rng.integers(len(noise_paths)))
            room = max(0.0, durations[pick] - SEGMENT_SECONDS)
            start = round(float(rng.uniform(0.0, room)), 4)
            gain = round(float(rng.uniform(0.0, 1.0)), 4)
            out[i] = replace(out[i], path=noise_paths[pick], start_s=start, gain=gain,
                             speaker=f"{NOISE_SPEAKER}{pick}")
    return out
