"""The microphone: `kwspot listen` feeds live audio to a Detector and prints events as they
fire. Needs the optional ``sounddevice`` package (``pip install 'kwspot[listen]'``) and
PortAudio; without them, or without an input device, it says so in one line."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from kwspot.errors import KwspotError
from kwspot.runtime.detector import Detection, Detector, DetectorConfig


def _sounddevice():
    try:
        import sounddevice
    except ImportError:
        raise KwspotError("kwspot listen needs sounddevice: pip install 'kwspot[listen]'"
                          ) from None
    except OSError as exc:  # the package is there but PortAudio is not
        raise KwspotError(f"no audio system: {exc} (install PortAudio, e.g. libportaudio2)"
                          ) from None
    return sounddevice


def listen(model: str | Path | None = None, config: DetectorConfig | None = None,
           device: str | int | None = None, seconds: float | None = None,
           on_event: Callable[[Detection], None] = print, chunk_ms: float = 20.0,
           on_start: Callable[[], None] | None = None) -> int:
    """Detect on the microphone until Ctrl-C (or ``seconds``); returns the number of events."""
    sd = _sounddevice()
    detector = Detector(model, config)
    rate = detector.model.sample_rate
    try:
        sd.check_input_settings(device=device, channels=1, dtype="float32", samplerate=rate)
    except Exception as exc:  # PortAudio's errors: no device, bad rate, busy
        raise KwspotError(f"no usable audio input device: {exc}") from None
    chunks: queue.Queue[np.ndarray] = queue.Queue()

    def callback(indata: np.ndarray, _frames: int, _time: object, _status: object) -> None:
        chunks.put(indata[:, 0].copy())

    count = 0
    if on_start:
        on_start()
    started = time.monotonic()
    with sd.InputStream(samplerate=rate, channels=1, dtype="float32", device=device,
                        blocksize=max(1, round(rate * chunk_ms / 1000)), callback=callback):
        while seconds is None or time.monotonic() - started < seconds:
            try:
                chunk = chunks.get(timeout=0.5)
            except queue.Empty:
                continue
            for event in detector.push(np.clip(chunk, -1.0, 1.0)):
                on_event(event)
                count += 1
    return count
