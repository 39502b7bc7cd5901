"""The incremental graph of a causal TC-ResNet export, ``<name>.stream.onnx``: feature frames
and a stream's state in, the posteriors of every output frame and the next state out (the
runtime side is ``kwspot.runtime.incremental``). Only causal models get one: a "same"-padded
model looks ahead, so its window cannot be built up frame by frame exactly.

The export is checked like the other graphs: a stream made of the check clips, primed as the
runtime primes it, fed in chunks of several sizes through ONNX Runtime from the numpy front
end, must give PyTorch's ``StreamingTCResNet`` posteriors (torch front end) within tolerance.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kwspot.classifier import KeywordClassifier
from kwspot.errors import KwspotError
from kwspot.models.streaming import ChunkStep, StreamingTCResNet
from kwspot.models.tc_resnet import TCResNet
from kwspot.runtime.frontend import NumpyFrontend
from kwspot.runtime.incremental import (
    STREAM_INPUT,
    STREAM_OUTPUTS,
    StreamGraph,
    priming,
    state_names,
)
from kwspot.runtime.model import onnx_session


def streamable(model: KeywordClassifier) -> bool:
    """A model whose export gets an incremental graph: a causal TC-ResNet (its stem a bare
    conv, as every registered causal model's is) on MFCC/log-mel."""
    network = model.network
    return isinstance(network, TCResNet) and network.cfg.time_padding == "causal" \
        and not network.cfg.stem_norm


def export_stream_graph(model: KeywordClassifier, path: Path, check_audio: np.ndarray,
                        tolerance: float) -> dict[str, Any]:
    """Write the graph to ``path`` (its final name goes in the card), check it, and return
    the card's ``stream`` entry with the measured difference."""
    from kwspot.export.onnx import export_module

    streaming = StreamingTCResNet(model.network, model.features.num_frames)
    step = ChunkStep(streaming).eval()
    shapes = step.state_shapes()
    stride = model.network.total_stride
    prime_samples, _ = priming(model.features, stride, streaming.reach)
    state = streaming.init_state(1)
    example = (torch.zeros(1, model.features.num_channels, 1 + stride * 2),
               *state.contexts, state.pool)
    batch = torch.export.Dim("streams", min=1, max=4096)
    frames = torch.export.Dim("frames", min=1, max=1 << 24)
    inputs, outputs = state_names(len(shapes))
    export_module(step, example, path, [STREAM_INPUT, *inputs], [*STREAM_OUTPUTS, *outputs],
                  dynamic_shapes=({0: batch, 2: frames}, tuple({0: batch} for _ in shapes)))
    entry: dict[str, Any] = {
        "file": path.name, "input": STREAM_INPUT, "frames_per_output": stride,
        "window_positions": streaming.positions, "state_shapes": [list(s) for s in shapes],
        "prime_samples": prime_samples,
        "meaning": "(B, C, T) feature frames and the state tensors in; posteriors and logits "
                   "(B, outputs, classes) of the output frames among them, and the next "
                   "state, out. Every call must end on an output frame (frame 0, then every "
                   "frames_per_output-th); a stream is primed with prime_samples of silence "
                   "whose outputs are dropped"}
    diff = stream_parity(model, streaming, StreamGraph(onnx_session(path, 0), entry,
                                                       model.features, path), check_audio)
    entry["parity"] = {"max_abs_diff": diff, "tolerance": tolerance}
    if diff > tolerance:
        raise KwspotError(f"the stream graph and PyTorch disagree by {diff:.2e} "
                          f"(> {tolerance:.0e}); nothing was written")
    return entry


@torch.no_grad()
def stream_parity(model: KeywordClassifier, streaming: StreamingTCResNet, graph: StreamGraph,
                  check_audio: np.ndarray) -> float:
    """Largest posterior difference over a primed stream of the check clips, fed in chunks
    of 1, 3 and 16 outputs and the rest."""
    silence = np.zeros(graph.prime_samples, np.float32)
    audio = np.concatenate([silence, *np.asarray(check_audio, np.float32)])
    frames = NumpyFrontend(model.features).frames(audio)
    usable = (frames.shape[1] - 1) // graph.frames_per_output * graph.frames_per_output + 1
    prime_frames = 1 + (graph.prime_outputs - 1) * graph.frames_per_output
    state, got = graph.init_state(), []
    bounds = [0, prime_frames]
    for outputs in (1, 3, 16):
        bounds.append(min(usable, bounds[-1] + outputs * graph.frames_per_output))
    bounds.append(usable)
    for start, end in itertools.pairwise(bounds):
        if end > start:
            posteriors, _, state = graph.run(frames[None, :, start:end], state)
            got.append(posteriors[0])
    torch_frames = model.frontend(torch.from_numpy(audio)[None])[..., :usable]
    logits, _ = streaming(torch_frames, streaming.init_state(1))
    expected = torch.softmax(logits[0], dim=-1).numpy()
    kept = slice(graph.prime_outputs, None)
    return float(np.abs(np.concatenate(got)[kept] - expected[kept]).max())
