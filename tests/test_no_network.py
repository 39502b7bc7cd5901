"""kwspot makes no network request at run time: a detector process, traced with strace, opens
no internet socket and asks no DNS resolver (ONNX Runtime telemetry is switched off)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_detect_opens_no_internet_socket(tmp_path: Path) -> None:
    audio = (np.random.default_rng(0).standard_normal(16000 * 20) * 0.05).astype(np.float32)
    wav = tmp_path / "noise.wav"
    sf.write(str(wav), audio, 16000)
    log = tmp_path / "trace.log"
    code = ("import time, sys\nfrom kwspot.cli import main\n"
            f"main(['detect', {str(wav)!r}, '--json'])\ntime.sleep(3)\n")
    # a home that cannot hold ONNX Runtime's telemetry device id: its warning would show
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    env = {**os.environ, "HOME": str(blocked / "home"), "XDG_CACHE_HOME": str(blocked / "cache")}
    env.pop("ORT_DISABLE_TELEMETRY", None)  # kwspot must set it itself
    run = subprocess.run(["strace", "-f", "-qq", "-e", "trace=socket,connect,sendto", "-o",
                          str(log), sys.executable, "-c", code], capture_output=True, text=True,
                         check=False, env=env)
    if run.returncode != 0 and ("ptrace" in run.stderr or "not permitted" in run.stderr):
        pytest.skip(f"strace cannot trace here: {run.stderr.strip()[:200]}")
    assert run.returncode == 0, run.stderr
    trace = log.read_text()
    internet = [line for line in trace.splitlines()
                if "AF_INET" in line or "nscd" in line or "htons(53)" in line]
    assert internet == [], internet[:5]
    assert "telemetry" not in run.stderr, run.stderr
