"""Exact incremental inference for a causal TC-ResNet: frames in, window logits out, state explicit.

Each conv keeps its last kernel-1 inputs; a stride-s conv emits at the input positions that are
multiples of s, found from the number of frames seen. BatchNorm (eval) and ReLU act per position.
The last-layer vectors of the current window sit in a small buffer for the average pool. The
state goes in and comes out of ``forward``, so one module serves any number of streams.

Output j is emitted once frame ``total_stride * j`` has arrived; it equals
``model.window_logits(frames[..., : total_stride * j + 1], window_frames)``. Outputs start at
reset with zero history (zero conv padding, as each training clip sees), so the first
ceil(window_frames / total_stride) - 1 outputs average over the shorter window seen so far.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from kwspot.errors import KwspotError
from kwspot.models.tc_resnet import ResidualBlock, TCResNet


@dataclass(frozen=True)
class StreamState:
    """Everything a stream carries between calls; ``forward`` returns a new one."""

    contexts: tuple[torch.Tensor, ...]  # per conv with kernel > 1: its last kernel-1 inputs
    pool: torch.Tensor  # (B, C, positions-1): last-layer vectors of the window so far, zero-filled
    frames: int  # input frames seen; gives every layer's stride phase and the pool's fill


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _stream_conv(
    conv: nn.Conv1d, x: torch.Tensor, context: torch.Tensor, seen: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """New outputs of a causal conv for new inputs x, given its context and inputs seen before."""
    kernel, stride = conv.kernel_size[0], conv.stride[0]
    buffer = torch.cat([context, x], dim=-1)
    new_context = buffer[..., buffer.shape[-1] - (kernel - 1) :]
    first = (-seen) % stride  # offset in x of the first new input at a multiple of the stride
    if x.shape[-1] <= first:
        return x.new_zeros(x.shape[0], conv.out_channels, 0), new_context
    y = F.conv1d(buffer[..., first:], conv.weight, conv.bias, stride)
    return y, new_context


class StreamingTCResNet(nn.Module):
    """A trained causal TCResNet run frame by frame; puts the model in eval mode (BN as stored)."""

    def __init__(self, model: TCResNet, window_frames: int = 98) -> None:
        super().__init__()
        if not isinstance(model, TCResNet) or model.cfg.time_padding != "causal":
            raise KwspotError(
                "streaming needs a causal TC-ResNet (time_padding='causal', e.g. "
                "tc-resnet8-causal); a 'same'-padded model looks ahead and cannot stream"
            )
        if window_frames < 1:
            raise KwspotError(f"window_frames must be at least 1, got {window_frames}")
        self.model = model.eval()
        self.window_frames = window_frames
        self.positions = _ceil_div(window_frames, model.total_stride)
        pairs = [(b.conv1, b.conv2) for b in self._blocks()]
        self.convs: list[nn.Conv1d] = [model.stem, *(c for pair in pairs for c in pair)]

    def _blocks(self) -> list[ResidualBlock]:
        return list(self.model.blocks)

    @property
    def reach(self) -> int:
        """How many frames before an output frame its window mean depends on: the pool's
        earlier positions plus the conv stack's receptive field (96 + 170 for TC-ResNet8)."""
        history, stride = 0, 1
        for conv in self.convs:
            history += (conv.kernel_size[0] - 1) * stride
            stride *= conv.stride[0]
        return (self.positions - 1) * self.model.total_stride + history

    def train(self, mode: bool = True) -> StreamingTCResNet:
        if mode:
            raise KwspotError("StreamingTCResNet is inference only; train the TCResNet itself")
        return super().train(False)

    def init_state(self, batch: int) -> StreamState:
        """The state at reset: zero history, as at the start of a training clip."""
        weight = self.model.classifier.weight
        contexts = tuple(
            weight.new_zeros(batch, c.in_channels, c.kernel_size[0] - 1) for c in self.convs
        )
        pool = weight.new_zeros(batch, self.model.classifier.in_features, self.positions - 1)
        return StreamState(contexts, pool, 0)

    def forward(
        self, frames: torch.Tensor, state: StreamState
    ) -> tuple[torch.Tensor, StreamState]:
        """(B, C, t) new frames, any t >= 0 -> (B, n_out, classes) logits of completed outputs."""
        model, seen = self.model, state.frames
        contexts = iter(state.contexts)
        new_contexts: list[torch.Tensor] = []

        x, ctx = _stream_conv(model.stem, frames, next(contexts), seen)
        new_contexts.append(ctx)
        for block in self._blocks():
            y, ctx = _stream_conv(block.conv1, x, next(contexts), seen)
            new_contexts.append(ctx)
            y = block.relu(block.bn1(y))
            after = _ceil_div(seen, block.stride)  # inputs conv2 has seen
            y, ctx = _stream_conv(block.conv2, y, next(contexts), after)
            new_contexts.append(ctx)
            y = block.bn2(y)
            if y.shape[-1]:  # the stride-s 1x1 shortcut reads the inputs conv1 is aligned to
                y = y + block.shortcut(x[..., (-seen) % block.stride :])
            x, seen = block.relu(y), after

        pooled, pool = self._pool(x, state.pool, seen)  # seen: last-layer vectors before this call
        logits = model.classifier(pooled.transpose(1, 2))
        return logits, StreamState(tuple(new_contexts), pool, state.frames + frames.shape[-1])

    def _pool(
        self, x: torch.Tensor, pool: torch.Tensor, done: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Window means for new last-layer vectors x (B, C, n), `done` vectors emitted before."""
        n, width = x.shape[-1], self.positions
        if n == 0:
            return x, pool
        buffer = torch.cat([pool, x], dim=-1)
        sums = buffer.unfold(-1, width, 1).sum(dim=-1)  # (B, C, n); zeros before reset add 0
        counts = torch.arange(done + 1, done + n + 1, device=x.device).clamp(max=width)
        return sums / counts.to(x.dtype), buffer[..., buffer.shape[-1] - (width - 1) :]


def _newest_first_conv(conv: nn.Conv1d, x: torch.Tensor, context: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """A causal conv over a chunk that ends on one of its output positions, in reversed time:
    ``x`` holds the new inputs and ``context`` the kernel-1 before them, newest first; returns
    the outputs (newest first) and the next context. Striding from the newest input lines the
    outputs up with the chunk's last frame whatever its length, so no phase depends on the
    length and one graph serves every call of a stream."""
    kernel, stride = conv.kernel_size[0], conv.stride[0]
    buffer = torch.cat([x, context], dim=-1)
    y = F.conv1d(buffer, conv.weight.flip(-1), conv.bias, stride)
    return y, buffer[..., : kernel - 1]


class ChunkStep(nn.Module):
    """``StreamingTCResNet`` in the form an ONNX graph takes: tensors in, tensors out.

    ``forward(frames, *contexts, pool)`` -> ``(posteriors, logits, *contexts, pool)``, outputs
    (B, n, classes). Every call must end on an output frame (a multiple of the total stride
    S, counting from the stream's frame 0): the first call of a stream holds frames 0..S*m
    (``S*m + 1`` frames) and every later call a multiple of S frames. The stack runs in
    reversed time (one flip in, one out; the state is kept newest first). The window mean
    divides by the full window's positions, so the first ``positions - 1`` outputs of a
    stream (zeros in the pool) are not window means; the runtime primes the stream past them
    (and past ``reach``, so no kept output depends on the zero state) and drops them. From
    there each output equals ``StreamingTCResNet``'s and so ``window_logits``.
    """

    def __init__(self, streaming: StreamingTCResNet) -> None:
        super().__init__()
        self.streaming = streaming

    def state_shapes(self) -> list[tuple[int, int]]:
        """(channels, length) of each state tensor after the batch dimension, in order."""
        state = self.streaming.init_state(1)
        return [tuple(t.shape[1:]) for t in (*state.contexts, state.pool)]

    def forward(self, frames: torch.Tensor, *state: torch.Tensor
                ) -> tuple[torch.Tensor, ...]:
        model = self.streaming.model
        contexts = iter(state[:-1])
        new: list[torch.Tensor] = []
        x, ctx = _newest_first_conv(model.stem, frames.flip(-1), next(contexts))
        new.append(ctx)
        for block in self.streaming._blocks():
            y, ctx = _newest_first_conv(block.conv1, x, next(contexts))
            new.append(ctx)
            y, ctx = _newest_first_conv(block.conv2, block.relu(block.bn1(y)), next(contexts))
            new.append(ctx)
            # the stride-s 1x1 shortcut reads the newest input first, like the convs
            x = block.relu(block.bn2(y) + block.shortcut(x))
        width = self.streaming.positions
        buffer = torch.cat([x, state[-1]], dim=-1)
        means = F.avg_pool1d(buffer, width, 1)  # (B, C, n): each output's window mean
        logits = model.classifier(means.transpose(1, 2)).flip(1)  # oldest output first
        return (torch.softmax(logits, dim=-1), logits, *new, buffer[..., : width - 1])
