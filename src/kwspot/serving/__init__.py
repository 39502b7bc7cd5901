"""Serving: an ASGI app (FastAPI) over the streaming engine — one detector per WebSocket,
windows from all streams micro-batched into one model call, Prometheus metrics, a browser
microphone demo. Needs the optional extra: ``pip install 'kwspot[serve]'``.

    from kwspot.serving import ServeConfig, create_app
    app = create_app(ServeConfig(model="model.onnx"))   # any ASGI server can run it
"""

from kwspot.serving.config import ServeConfig

__all__ = ["ServeConfig", "create_app", "serve"]


def create_app(config: ServeConfig | None = None):
    """The FastAPI app for ``config`` (imports FastAPI only when called)."""
    from kwspot.serving.app import create_app as _create

    return _create(config or ServeConfig())


def serve(config: ServeConfig) -> None:
    """Run the app under uvicorn with ``config.workers`` processes (blocks)."""
    from kwspot.serving.server import serve as _serve

    _serve(config)
