"""Incremental streaming for causal exports: ``<name>.stream.onnx`` computes only what the new
feature frames add, layer by layer, with each stream's state held outside the graph.

A causal TC-ResNet (``tc-resnet8-causal``) emits one output per total stride of frames (8
frames, 80 ms): the mean of its last-layer vectors over the window, each of which sees only
past frames. Re-running the 1 s window every hop recomputes ~12x the work this graph does.

Every call must end on an output frame: the stream's frame 0 is one, then every 8th. A stream
is primed with ``prime_samples`` of silence (at least one window, so the first real output has
a full window of history, as the frame-cached engine starts from a window of silence). Those
frames end on an output frame, and the priming outputs are dropped; from then on output ``j``
(j >= 1) covers the real stream up to sample ``j * hop``, the frame-cached engine's hop grid.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from kwspot.errors import KwspotError
from kwspot.runtime.frontend import FeatureConfig

STREAM_INPUT = "frames"
STREAM_OUTPUTS = ("posteriors", "logits")


def stream_graph_path(model_path: str | Path) -> Path:
    """The incremental graph beside an exported model: ``<name>.stream.onnx``."""
    path = Path(model_path)
    return path.with_name(f"{path.stem}.stream.onnx")


def state_names(count: int) -> tuple[list[str], list[str]]:
    """The graph's state inputs and the matching outputs, in order."""
    return [f"state{i}" for i in range(count)], [f"next_state{i}" for i in range(count)]


def priming(features: FeatureConfig, frames_per_output: int) -> tuple[int, int]:
    """(samples of silence that prime a stream, outputs they produce): the least silence of
    at least one window whose frames end on an output frame."""
    step = frames_per_output * features.hop_length
    steps = math.ceil((features.clip_samples - features.win_length) / step)
    return features.win_length + steps * step, steps + 1


class StreamGraph:
    """The ``<name>.stream.onnx`` session and how to call it (from the card's ``stream``)."""

    def __init__(self, session: ort.InferenceSession, entry: dict[str, Any],
                 features: FeatureConfig, where: Path) -> None:
        self.session = session
        try:
            self.frames_per_output = int(entry["frames_per_output"])
            shapes = [tuple(int(d) for d in s) for s in entry["state_shapes"]]
            self.window_positions = int(entry["window_positions"])
        except (KeyError, TypeError, ValueError):
            raise KwspotError(f"{where}: the card's 'stream' entry needs frames_per_output, "
                              "window_positions and state_shapes") from None
        self.state_shapes = shapes
        self.inputs, self.outputs = state_names(len(shapes))
        names = [i.name for i in session.get_inputs()]
        if names != [STREAM_INPUT, *self.inputs]:
            raise KwspotError(f"{where}: the stream graph takes {names}, not the card's "
                              f"{[STREAM_INPUT, *self.inputs]}")
        self.output_names = [*STREAM_OUTPUTS, *self.outputs]
        self.hop_samples = self.frames_per_output * features.hop_length
        self.prime_samples, self.prime_outputs = priming(features, self.frames_per_output)
        if self.prime_outputs < self.window_positions - 1:
            raise KwspotError(f"{where}: priming fills {self.prime_outputs} of the "
                              f"{self.window_positions} window positions")
        self._primed: list[np.ndarray] | None = None

    def primed_state(self, silence_frames: np.ndarray) -> list[np.ndarray]:
        """The state after the priming silence's (C, T) frames: the same for every stream, so
        computed once (the graph never writes its inputs, so streams may share it)."""
        if self._primed is None:
            _, _, self._primed = self.run(silence_frames[None], self.init_state())
        return self._primed

    def init_state(self, batch: int = 1) -> list[np.ndarray]:
        """A stream at reset: zero history (the causal convs' zero padding)."""
        return [np.zeros((batch, *shape), np.float32) for shape in self.state_shapes]

    def run(self, frames: np.ndarray, state: list[np.ndarray]
            ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """(B, C, T) frames ending on an output frame -> posteriors and logits (B, n, classes)
        of the outputs they complete, and the next state."""
        feed = {STREAM_INPUT: np.ascontiguousarray(frames, dtype=np.float32),
                **dict(zip(self.inputs, state, strict=True))}
        posteriors, logits, *next_state = self.session.run(self.output_names, feed)
        return posteriors, logits, next_state
