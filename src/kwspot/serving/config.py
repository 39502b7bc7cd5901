"""What a server may accept: the model, its detector settings, and every limit, checked once
at start so a bad setting fails before the port opens."""

from __future__ import annotations

import ipaddress
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from kwspot.errors import KwspotError
from kwspot.runtime.detector import DetectorConfig

LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; anything else (0.0.0.0 included) is exposed."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServeConfig:
    """Server settings. ``model`` None serves the shipped TC-ResNet8. Limits: an upload may be
    ``max_upload_mb`` big and decode to at most ``max_upload_s`` of audio; a stream may last
    ``max_stream_s``, stay silent (no frame) ``idle_timeout_s``, and at most ``max_streams``
    run at once per worker (then 503 + Retry-After). Micro-batching stacks windows that become
    ready within ``batch_wait_ms`` into one call of at most ``max_batch`` windows;
    ``batch_wait_ms=0`` turns it off (each stream's windows are scored on their own).
    Uploads run one at a time per worker; past ``max_pending_uploads`` waiting, 503. A
    browser may open streams only from the server's own page or ``allowed_origins``."""

    model: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    api_key: str | None = None
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    max_upload_mb: float = 20.0
    max_upload_s: float = 3600.0
    max_stream_s: float = 3600.0
    idle_timeout_s: float = 30.0
    max_streams: int = 200
    batch_wait_ms: float = 2.0
    max_batch: int = 256
    retry_after_s: int = 5
    max_pending_uploads: int = 16
    allowed_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("max_upload_mb", "max_upload_s", "max_stream_s", "idle_timeout_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise KwspotError(f"{name} must be a positive number, got {value!r}")
        if not math.isfinite(self.batch_wait_ms) or not 0 <= self.batch_wait_ms <= 1000:
            raise KwspotError(f"batch_wait_ms must be in [0, 1000], got {self.batch_wait_ms}")
        for name in ("workers", "max_streams", "max_batch", "retry_after_s",
                     "max_pending_uploads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise KwspotError(f"{name} must be a positive integer, got {value!r}")
        if not 0 <= self.port <= 65535:
            raise KwspotError(f"port must be in 0-65535, got {self.port}")
        if self.api_key is not None and len(self.api_key) < 16:
            raise KwspotError("the API key must be at least 16 characters")
        if not is_loopback(self.host) and not self.api_key:
            raise KwspotError(
                f"refusing to serve on {self.host}, which is not a loopback address, without "
                "an API key: set KWSPOT_API_KEY or pass --api-key-file")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def to_json(self) -> str:
        """For worker processes (uvicorn's workers import the app from an env variable)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        data: dict[str, Any] = json.loads(text)
        detector = data.pop("detector", {}) or {}
        origins = tuple(data.pop("allowed_origins", ()) or ())
        return cls(detector=DetectorConfig(**detector), allowed_origins=origins, **data)
