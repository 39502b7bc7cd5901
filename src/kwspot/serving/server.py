"""``kwspot serve``: uvicorn with one process per worker. Each worker loads the model and runs
its own batcher; the kernel spreads connections over the workers, and a WebSocket stays in the
process that accepted it, so a stream's detector state is never shared or moved."""

from __future__ import annotations

import os
import shutil
import tempfile

from kwspot.runtime.detector import Detector
from kwspot.runtime.model import load_keyword_model
from kwspot.serving.config import ServeConfig

APP_FACTORY = "kwspot.serving.app:app_from_environment"


def check_model(config: ServeConfig) -> None:
    """Load the model and build one detector: a bad model or setting fails with kwspot's one
    line before any port opens or any worker (or Ray) starts."""
    Detector(load_keyword_model(config.model), config.detector)


def serve(config: ServeConfig, log_level: str = "info") -> None:
    import uvicorn

    check_model(config)
    os.environ["KWSPOT_SERVE_CONFIG"] = config.to_json()
    metrics_dir = None
    if config.workers > 1:
        metrics_dir = tempfile.mkdtemp(prefix="kwspot-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run(APP_FACTORY, factory=True, host=config.host, port=config.port,
                    workers=config.workers, log_level=log_level, access_log=False,
                    ws_max_size=4 * 1024 * 1024, timeout_graceful_shutdown=5)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
