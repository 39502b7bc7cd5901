"""The same app as a Ray Serve deployment: replicas (one model each), Ray's request batching
(``@serve.batch``) in place of the built-in micro-batcher, Ray's HTTP proxy in front.
Needs ``pip install 'kwspot[ray]'``.

    from kwspot.serving import ServeConfig
    from kwspot.serving.ray_serve import run
    run(ServeConfig(port=8000), replicas=2)        # local Ray; RAY_ADDRESS joins a cluster

A WebSocket is one ASGI call through Ray's proxy to one replica, so a stream's detector
lives in that replica for the whole connection; HTTP requests are spread over replicas.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from ray import serve

from kwspot.serving.batching import score_together
from kwspot.serving.config import ServeConfig

APP_NAME = "kwspot"


class RayBatcher:
    """The built-in batcher's interface over a ``@serve.batch`` method."""

    def __init__(self, batched: Any) -> None:
        self.batched = batched

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def score(self, windows: np.ndarray) -> np.ndarray:
        return await self.batched(windows)


@serve.deployment(name="kwspot")
@serve.ingress()
class KwspotDeployment:
    """One replica: the kwspot app with its own model; stream windows batched by Ray."""

    def __init__(self, config_json: str) -> None:
        self.config = ServeConfig.from_json(config_json)
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="kwspot-model")
        self.score_batch.set_max_batch_size(self.config.max_batch)
        self.score_batch.set_batch_wait_timeout_s(self.config.batch_wait_ms / 1000)

    def __serve_build_asgi_app__(self) -> Any:
        from kwspot.serving.app import create_app

        app = create_app(self.config, RayBatcher(self.score_batch))
        self.service = app.state.service
        return app

    @serve.batch  # sizes come from the config, set in __init__
    async def score_batch(self, requests: list[np.ndarray]) -> list[np.ndarray]:
        """Ray collects concurrent ``score`` calls (each one stream's windows) into one
        list; one model call scores them all, and each caller gets its own rows back."""
        return await asyncio.get_running_loop().run_in_executor(
            self.executor, score_together, self.service.score_windows, self.service.metrics,
            requests)


def application(config: ServeConfig, replicas: int = 2) -> Any:
    """The bound Ray Serve application. Ray counts a WebSocket as an ongoing request, so each
    replica accepts up to ``max_streams`` streams plus a margin for HTTP requests; the app
    itself answers 503 + Retry-After past ``max_streams``."""
    deployment = KwspotDeployment.options(
        num_replicas=replicas, max_ongoing_requests=config.max_streams + 32,
        ray_actor_options={"num_cpus": 0})
    return deployment.bind(config.to_json())


def run(config: ServeConfig, replicas: int = 2, blocking: bool = False,
        address: str | None = None) -> None:
    """Start Serve's HTTP proxy on ``config.host:port`` and deploy ``replicas`` replicas:
    on the Ray cluster at ``address`` (or ``RAY_ADDRESS``), else on a local Ray started
    here and kept on loopback."""
    import os

    import ray

    if not ray.is_initialized():
        if address or os.environ.get("RAY_ADDRESS"):
            ray.init(address=address)
        else:
            ray.init(include_dashboard=False, _node_ip_address="127.0.0.1")
    serve.start(http_options={"host": config.host, "port": config.port})
    serve.run(application(config, replicas), name=APP_NAME, route_prefix="/",
              blocking=blocking)
