"""One WebSocket stream: the client's PCM (int16 or float32, little-endian, any rate, frames
of any size) -> the model's rate -> its own ``Detector``. Nothing here is shared between
streams; the only shared thing is the model call, which the batcher makes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kwspot.audio import MAX_RATE, MIN_RATE, stream_resampler
from kwspot.errors import KwspotError
from kwspot.runtime.detector import Detection, Detector, as_audio

FORMATS = {"int16": np.dtype("<i2"), "float32": np.dtype("<f4")}
# The front end runs on the event loop: a frame of several seconds would stall every other
# stream of the worker while it is computed, so frames are capped.
MAX_FRAME_S = 2.0


class FrameTooLarge(KwspotError):
    """A frame longer than ``MAX_FRAME_S`` of audio."""


@dataclass(frozen=True)
class StreamFormat:
    """What the client declared when it connected."""

    sample_rate: int
    format: str = "int16"

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise KwspotError(f"format must be one of {sorted(FORMATS)}, got {self.format!r}")
        if not MIN_RATE <= self.sample_rate <= MAX_RATE:
            raise KwspotError(f"sample_rate must be in {MIN_RATE}-{MAX_RATE} Hz, "
                              f"got {self.sample_rate}")


class StreamSession:
    """Bytes in (``take``), windows out to score, then ``accept`` -> events and scores."""

    def __init__(self, detector: Detector, fmt: StreamFormat) -> None:
        self.detector = detector
        self.fmt = fmt
        self.dtype = FORMATS[fmt.format]
        self.pending = b""  # a partial sample carried to the next frame
        self.received_s = 0.0
        rate = detector.model.sample_rate
        self.resampler = stream_resampler(fmt.sample_rate, rate)

    def decode(self, data: bytes) -> np.ndarray:
        """PCM bytes -> samples ``Detector.take`` reads (int16 PCM, or float in [-1, 1]) at
        the model's rate; any frame size (a split sample waits for the next frame)."""
        seconds = len(data) / self.dtype.itemsize / self.fmt.sample_rate
        if seconds > MAX_FRAME_S:
            raise FrameTooLarge(f"a frame holds {seconds:.2f} s of audio; send at most "
                                f"{MAX_FRAME_S:g} s per frame (20-100 ms is typical)")
        data = self.pending + data
        usable = len(data) - len(data) % self.dtype.itemsize
        self.pending = data[usable:]
        samples = np.frombuffer(data[:usable], self.dtype)
        self.received_s += len(samples) / self.fmt.sample_rate
        if self.dtype.kind == "f":  # a browser's float may overshoot by a hair (NaN stays)
            samples = np.clip(samples, -1.0, 1.0)
        if self.resampler is None:
            return samples  # the detector's ``as_audio`` scales int16 and checks float once
        # before the resampler: NaN would poison its state
        return self.resampler(as_audio(samples, None, self.fmt.sample_rate))

    def take(self, data: bytes) -> tuple[np.ndarray, np.ndarray]:
        """(window end times, unscored windows) completed by this frame."""
        return self.detector.take(self.decode(data))

    def take_end(self) -> tuple[np.ndarray, np.ndarray]:
        """End of stream: the resampler's tail, then one window of silence (``flush``), in
        one take (an incremental stream takes nothing more until what it took is scored)."""
        tail = None if self.resampler is None else \
            self.resampler(np.zeros(0, np.float32), last=True)
        return self.detector.take_flush(tail)

    def accept(self, ends: np.ndarray, posteriors: np.ndarray
               ) -> tuple[list[Detection], np.ndarray, np.ndarray]:
        """Posteriors of the taken windows -> (events, window end times, smoothed scores)."""
        ends, smoothed = self.detector.accept(ends, posteriors)
        return self.detector.events(ends, smoothed), ends, smoothed
