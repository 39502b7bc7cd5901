"""Incremental streaming for causal exports: ``<name>.stream.onnx`` computes only what the new
feature frames add, layer by layer, with each stream's state held outside the graph.

A causal TC-ResNet (``tc-resnet8-causal``) emits one output per total stride of frames (8
frames, 80 ms): the mean of its last-layer vectors over the window, each of which sees only
past frames (with their real history, where a training clip and the frame-cached engine see
zero padding). Re-running the 1 s window every hop recomputes ~12x the work this graph does.

Every call must end on an output frame: the stream's frame 0 is one, then every 8th. A stream
is primed with the card's ``prime_samples`` of silence: at least one window, and at least the
frames an output's window mean reaches back over (266 for TC-ResNet8), so no kept output
depends on the zero state at reset. Those frames end on an output frame, and the priming
outputs are dropped; from then on output ``j`` (j >= 1) covers the real stream up to sample
``j * hop``, the frame-cached engine's hop grid.
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


def priming(features: FeatureConfig, frames_per_output: int, reach_frames: int = 0
            ) -> tuple[int, int]:
    """(samples of silence that prime a stream, outputs they produce): the least silence of
    at least one window, whose frames end on an output frame, after which the next output
    reaches back ``reach_frames`` frames without meeting the zero state."""
    step = frames_per_output * features.hop_length
    steps = max(math.ceil((features.clip_samples - features.win_length) / step),
                math.ceil(reach_frames / frames_per_output) - 1)
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
            self.prime_samples = int(entry["prime_samples"])
        except (KeyError, TypeError, ValueError):
            raise KwspotError(f"{where}: the card's 'stream' entry needs frames_per_output, "
                              "window_positions, state_shapes and prime_samples") from None
        self.state_shapes = shapes
        self.inputs, self.outputs = state_names(len(shapes))
        names = [i.name for i in session.get_inputs()]
        if names != [STREAM_INPUT, *self.inputs]:
            raise KwspotError(f"{where}: the stream graph takes {names}, not the card's "
                              f"{[STREAM_INPUT, *self.inputs]}")
        self.output_names = [*STREAM_OUTPUTS, *self.outputs]
        self.hop_samples = self.frames_per_output * features.hop_length
        least, _ = priming(features, self.frames_per_output)
        extra = self.prime_samples - features.win_length
        if self.prime_samples < least or extra % self.hop_samples:
            raise KwspotError(f"{where}: prime_samples {self.prime_samples} must be at least "
                              f"{least} and end on an output frame")
        self.prime_outputs = 1 + extra // self.hop_samples
        self._primed: list[np.ndarray] | None = None

    def primed_state(self, frontend: Any) -> tuple[list[np.ndarray], np.ndarray]:
        """Prime a stream: push the silence through its (reset) front end; returns the graph
        state after it and the front end's frames left over (none). The state is the same for
        every stream, so the graph runs once per model (it never writes its inputs, so
        streams may share it)."""
        frames = frontend.push(np.zeros(self.prime_samples, np.float32))
        if self._primed is None:
            _, _, self._primed = self.run(frames[None], self.init_state())
        return self._primed, frames[:, :0]

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
