"""Subprocesses the tests start: a kwspot server on a free loopback port (waited for, then
stopped), and a docs example run where neither kwspot nor torch may be imported."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

KWSPOT = [sys.executable, "-m", "kwspot.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_kwspot(args: list[str], probe: str, timeout_s: float = 60.0
                 ) -> tuple[subprocess.Popen, str]:
    """``kwspot ARGS --port P``, returned once GET ``probe`` answers; its output is kept for
    the failure message."""
    import httpx2 as httpx

    port = free_port()
    proc = subprocess.Popen([*KWSPOT, *args, "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"kwspot {args[0]} exited: {proc.stdout.read()}")
        try:
            if httpx.get(base + probe, timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"kwspot {args[0]} did not answer {probe} in {timeout_s:g} s")


def stop(proc: subprocess.Popen) -> str:
    """Terminate (or kill, after 20 s) and return what it printed."""
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ""


def run_example(example: Path, argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run a docs example as ``python EXAMPLE ARGV...`` and fail inside it if it imported
    kwspot or torch: the examples promise plain runtimes only."""
    runner = ("import runpy, sys\n"
              f"sys.argv = ['x', *{[str(a) for a in argv]!r}]\n"
              f"runpy.run_path({str(example)!r}, run_name='__main__')\n"
              "assert not [m for m in sys.modules if m.startswith(('kwspot', 'torch'))]\n")
    return subprocess.run([sys.executable, "-c", runner], capture_output=True, text=True,
                          check=False, cwd=cwd)
