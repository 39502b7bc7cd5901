"""The streaming engine: audio chunks of any size in, posteriors every hop out, for one stream.

With a network graph in the export, each 10 ms feature frame is computed once (numpy front end)
and kept in a ring of one window's frames; every hop the network runs on that window. Without
one (older exports), the audio-in graph runs on each 1 s window. Either way, all windows that a
chunk completes are scored in one batched call, so a file pushed in large blocks is scored in
one pass, and the result never depends on how the audio was chunked.

The stream starts with one window of silence, so the first hop already has a full window.
Window ``j`` (j >= 1) ends ``j * hop`` samples into the real stream.

A causal export with an incremental graph (``runtime.incremental``) is run that way instead:
the frames go through the graph once, with the stream's state, and each output is a hop. Its
hop is then the model's output step (80 ms for TC-ResNet8), its priming the card's (at least
a window of silence, and the model's reach). ``take`` returns the frames still to run with the
stream's state (``PendingOutputs``); ``score`` runs them and moves the stream's state on,
alone or together with other streams' (one graph call per chunk length), so the server's
micro-batcher batches incremental streams too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kwspot.errors import KwspotError
from kwspot.runtime.model import KeywordModel, silence_for

MAX_BATCH = 512


@dataclass(eq=False)  # identity, never array comparison
class PendingOutputs:
    """Frames an incremental stream has taken but not yet run through its stream graph; they
    must run with that stream's state, and before the stream takes more audio."""

    scorer: StreamScorer
    frames: np.ndarray  # (C, T): T a multiple of the graph's frames per output
    outputs: int  # how many outputs (hops) they complete

    def __len__(self) -> int:
        return self.outputs


class StreamScorer:
    """Posteriors (n, classes) for every hop completed by the pushed audio."""

    def __init__(self, model: KeywordModel, hop_samples: int) -> None:
        if not 1 <= hop_samples < model.window_samples:
            raise KwspotError(f"hop ({hop_samples} samples) must be at least one sample and "
                              f"shorter than the model's window ({model.window_samples})")
        self.model = model
        self.hop = hop_samples
        self.window = model.window_samples
        self.frontend = model.frontend()
        self.stream = getattr(model, "stream", None)
        if self.stream is not None and hop_samples != self.stream.hop_samples:
            rate = getattr(model, "sample_rate", 16000)
            raise KwspotError(
                f"this causal export streams incrementally, one output every "
                f"{self.stream.hop_samples / rate * 1000:g} ms; a hop of "
                f"{hop_samples / rate * 1000:g} ms is not one of its outputs (leave the hop "
                f"at the card's default)")
        if self.frontend is not None:
            cfg = self.frontend.cfg
            if self.window != cfg.clip_samples:
                raise KwspotError(f"the card's window ({self.window} samples) differs from "
                                  f"its features' clip ({cfg.clip_samples} samples)")
            if hop_samples % cfg.hop_length:
                raise KwspotError(f"hop must be a multiple of the feature hop "
                                  f"({cfg.hop_ms:g} ms) for this model")
            self.hop_frames = hop_samples // cfg.hop_length
            self.window_frames = cfg.num_frames
        self.reset()

    def reset(self) -> None:
        self.pending: PendingOutputs | None = None  # incremental: taken, not yet scored
        self.hops_done = 0  # windows scored so far
        self.samples = 0  # real samples pushed so far
        if self.stream is not None:
            self.frontend.reset()
            # frames not yet run (fewer than one output's); the priming outputs are dropped
            self.state, self.frames = self.stream.primed_state(self.frontend)
        elif self.frontend is not None:
            self.frontend.reset()
            self.frames = self.frontend.push(silence_for(self.model, self.window))
            self.first_frame = 0  # stream frame index of self.frames[:, 0]
        else:
            self.audio = np.zeros(self.window, np.float32)
            self.first_sample = 0  # virtual sample index of self.audio[0]

    def take(self, chunk: np.ndarray) -> np.ndarray | PendingOutputs:
        """Push audio and return the windows it completed, unscored: (n, C, T) features or
        (n, window) audio, or for an incremental model ``PendingOutputs`` (or no rows).
        The stream's state moves on now (an incremental stream's when its ``PendingOutputs``
        are scored, which must happen before it takes more); ``score`` may run later, or
        batched with other streams' windows (the server's micro-batching). The windows are
        read-only views of the stream's buffer (which is only ever replaced, never written),
        so nothing is copied until the model call stacks or converts them."""
        if self.pending is not None:  # checked before anything moves
            raise KwspotError("score the windows this stream took before taking more audio "
                              "(its state moves on when they are scored), or reset() it")
        self.samples += len(chunk)
        ready = self.samples // self.hop - self.hops_done
        if self.stream is not None:
            return self._take_incremental(chunk, ready)
        if self.frontend is not None:
            return self._take_frames(chunk, ready)
        return self._take_audio(chunk, ready)

    def score(self, windows: np.ndarray | PendingOutputs | Sequence[PendingOutputs]
              ) -> np.ndarray | list[np.ndarray]:
        """Windows from ``take`` (of this or any stream of the same model) -> posteriors.
        ``PendingOutputs`` are run and their stream's state moved on; a list of them (several
        streams') gives a list of posteriors, in order."""
        if isinstance(windows, PendingOutputs):
            return run_pending([windows])[0]
        if not isinstance(windows, np.ndarray):
            return run_pending(list(windows))
        if not len(windows):
            return windows.reshape(0, len(self.model.labels))
        run = self.model.network_posteriors if self.frontend is not None \
            else self.model.posteriors
        return np.concatenate([run(windows[i : i + MAX_BATCH])
                               for i in range(0, len(windows), MAX_BATCH)])

    def _empty(self) -> np.ndarray:
        if self.stream is not None:
            return np.zeros((0, len(self.model.labels)), np.float32)
        if self.frontend is not None:
            return np.zeros((0, self.frames.shape[0], self.window_frames), np.float32)
        return np.zeros((0, self.window), np.float32)

    def _take_frames(self, chunk: np.ndarray, ready: int) -> np.ndarray:
        new = self.frontend.push(chunk)
        if new.shape[1]:
            self.frames = np.concatenate([self.frames, new], axis=1)
        if ready <= 0:
            return self._empty()
        # window j covers stream frames [j * hop_frames, j * hop_frames + window_frames)
        first = (self.hops_done + 1) * self.hop_frames - self.first_frame
        view = np.lib.stride_tricks.sliding_window_view(self.frames, self.window_frames, axis=1)
        windows = view[:, first : first + ready * self.hop_frames : self.hop_frames]
        windows = windows.transpose(1, 0, 2)
        self.hops_done += ready
        keep_from = (self.hops_done + 1) * self.hop_frames - self.first_frame
        self.frames = self.frames[:, keep_from:]
        self.first_frame += keep_from
        return windows

    def _take_incremental(self, chunk: np.ndarray, ready: int
                          ) -> np.ndarray | PendingOutputs:
        """The frames that end on output frames, to run with this stream's state."""
        new = self.frontend.push(chunk)
        frames = np.concatenate([self.frames, new], axis=1) if self.frames.shape[1] else new
        step = self.stream.frames_per_output
        usable = frames.shape[1] // step * step
        if usable // step != ready:  # the hop grid and the frame grid must agree
            raise KwspotError(f"internal: {usable // step} outputs for {ready} hops")
        self.frames = frames[:, usable:]
        if usable == 0:
            return self._empty()
        self.hops_done += ready
        self.pending = PendingOutputs(self, frames[:, :usable], ready)
        return self.pending

    def _take_audio(self, chunk: np.ndarray, ready: int) -> np.ndarray:
        self.audio = np.concatenate([self.audio, chunk])
        if ready <= 0:
            return self._empty()
        first = (self.hops_done + 1) * self.hop - self.first_sample
        view = np.lib.stride_tricks.sliding_window_view(self.audio, self.window)
        windows = view[first : first + ready * self.hop : self.hop]
        self.hops_done += ready
        keep_from = (self.hops_done + 1) * self.hop - self.first_sample
        self.audio = self.audio[keep_from:]
        self.first_sample += keep_from
        return windows


def run_pending(work: Sequence[PendingOutputs]) -> list[np.ndarray]:
    """Run streams' pending frames through their stream graph: the streams of one graph whose
    chunks have the same length go in one call, their states stacked. Every call runs before
    any stream's state moves on, so a failed call leaves every stream as it was. Returns each
    one's posteriors (outputs, classes), in order."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, item in enumerate(work):
        if item.scorer.pending is not item:
            raise KwspotError("these frames were scored already, or the stream was reset")
        key = (id(item.scorer.stream), item.frames.shape[1])
        groups.setdefault(key, []).append(i)
    out: list[np.ndarray | None] = [None] * len(work)
    moves: list[tuple[PendingOutputs, list[np.ndarray]]] = []
    for indices in groups.values():
        for start in range(0, len(indices), MAX_BATCH):
            chunk = indices[start : start + MAX_BATCH]
            group = [work[i] for i in chunk]
            frames = np.stack([g.frames for g in group])
            state = [np.concatenate(parts) for parts in zip(*(g.scorer.state for g in group),
                                                            strict=True)]
            posteriors, _, next_state = group[0].scorer.stream.run(frames, state)
            for row, (i, item) in enumerate(zip(chunk, group, strict=True)):
                # copies: a view would keep the whole batch's arrays alive with the stream
                moves.append((item, [s[row : row + 1].copy() for s in next_state]))
                out[i] = posteriors[row]
    for item, next_item_state in moves:
        item.scorer.state = next_item_state
        item.scorer.pending = None
    return out  # type: ignore[return-value]
