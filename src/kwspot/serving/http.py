"""What kwspot's web apps (``kwspot serve``, ``kwspot review``) share: one-line JSON errors for
every failure, FastAPI's own 404/405/422 included, and the same-origin rules of a server
that listens on this machine."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class RequestError(Exception):
    """An error the client caused: an HTTP status and one line."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """``RequestError`` and FastAPI's own errors as ``{"error": "one line"}``."""

    @app.exception_handler(RequestError)
    async def request_error(_request: Request, exc: RequestError) -> JSONResponse:
        return error(exc.status, str(exc), exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        return error(422, f"{where}: {first.get('msg', 'invalid request')}" if where
                     else str(first.get("msg", "invalid request")))


def host_name(host_header: str) -> str:
    """``[::1]:8010`` -> ``::1``; ``localhost:8010`` -> ``localhost``."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def same_origin(origin: str | None, host: str, allowed: tuple[str, ...] = ()) -> bool:
    """Browsers send ``Origin`` on cross-site requests and on every WebSocket, and any page may
    target 127.0.0.1: only the server's own pages (origin host = ``Host``) or ``allowed``
    origins pass. No ``Origin`` (not a browser, or a same-origin GET) passes."""
    if not origin or origin in allowed:
        return True
    return origin.split("://", 1)[-1].rstrip("/").lower() == host.lower()
