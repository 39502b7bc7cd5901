"""The real server: ``kwspot serve`` as a process (uvicorn), reached over loopback sockets —
two workers sharing metrics, interleaved WebSocket clients, and the browser demo driven by a
headless Chromium whose fake microphone plays a WAV file."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi", reason="kwspot[serve] is not installed")
pytest.importorskip("uvicorn", reason="kwspot[serve] is not installed")
httpx = pytest.importorskip("httpx2", reason="httpx2 is not installed")
websockets = pytest.importorskip("websockets", reason="websockets is not installed")

from processes import free_port, start_kwspot, stop  # noqa: E402
from test_serve import metric, offline_track, pcm16, speechy_audio  # noqa: E402

RATE = 16000
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def start_server(*args: str) -> tuple[subprocess.Popen, str]:
    return start_kwspot(["serve", *args], "/healthz")


@pytest.fixture
def two_workers() -> Iterator[str]:
    proc, base = start_server("--workers", "2")
    yield base
    stop(proc)


async def stream_over_socket(url: str, audio: np.ndarray, frame: int) -> list[dict]:
    async with websockets.connect(url) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        data = pcm16(audio)
        for i in range(0, len(data), frame):
            await ws.send(data[i : i + frame])
            await asyncio.sleep(0)
        await ws.send(b"")
        messages = []
        async for text in ws:
            messages.append(json.loads(text))
        return messages


def test_two_workers_serve_concurrent_streams_and_share_metrics(two_workers: str) -> None:
    audios = [speechy_audio(3.0, seed=20 + i) for i in range(6)]
    url = two_workers.replace("http", "ws") + "/v1/stream?scores=1"

    async def main() -> list[list[dict]]:
        return await asyncio.gather(*(stream_over_socket(url, a, 1234) for a in audios))

    results = asyncio.run(main())
    for audio, messages in zip(audios, results, strict=True):
        assert messages[-1]["type"] == "end"
        got = np.array([s for m in messages if m["type"] == "scores" for s in m["scores"]])
        _, expected = offline_track(audio)
        assert np.allclose(got, expected, atol=2e-3)
    for _ in range(6):
        assert httpx.get(two_workers + "/healthz").status_code == 200
    text = httpx.get(two_workers + "/metrics").text
    # the two processes' counts are merged, whichever worker answers
    assert 'kwspot_streams_total{outcome="completed"} 6.0' in text
    assert metric(text, "kwspot_batch_windows_sum") == 6 * 40  # 3 s + 1 s flush each


def test_server_refuses_to_start_off_loopback_without_key() -> None:
    result = subprocess.run([sys.executable, "-m", "kwspot.cli", "serve", "--host", "0.0.0.0",
                             "--port", str(free_port())], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "KWSPOT_API_KEY": ""})
    assert result.returncode != 0
    assert result.stderr.strip().startswith("kwspot: error: refusing to serve on 0.0.0.0")


def test_server_with_api_key_from_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("s" * 32 + "\n")
    proc, base = start_server("--api-key-file", str(key_file))
    try:
        audio = speechy_audio(1.0)
        buffer = io.BytesIO()
        sf.write(buffer, audio, RATE, format="WAV")
        assert httpx.post(base + "/v1/detect", content=buffer.getvalue()).status_code == 401
        ok = httpx.post(base + "/v1/detect", content=buffer.getvalue(),
                        headers={"Authorization": "Bearer " + "s" * 32})
        assert ok.status_code == 200
    finally:
        stop(proc)


# --- the browser demo ----------------------------------------------------------------------------

def keyword_recording(path: Path, rate: int) -> list[tuple[str, float]]:
    """Speech Commands "yes" and "stop" (held-out test clips) in quiet noise, written at
    ``rate`` so the page has to resample; returns (keyword, centre s)."""
    from conftest import shared_data_path

    from kwspot.audio import load_audio, resample

    clips = shared_data_path() / "speech_commands_lite_test"
    audio = np.random.default_rng(0).normal(0, 0.003, 8 * RATE).astype(np.float32)
    truth = []
    for word, start in (("yes", 2.0), ("stop", 5.0)):
        clip = load_audio(sorted((clips / word).glob("*.wav"))[3])
        audio[int(start * RATE) : int(start * RATE) + len(clip)] += clip
        truth.append((word, start + 0.5))
    sf.write(str(path), resample(audio, RATE, rate), rate, subtype="PCM_16")
    return truth


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium browser installed "
                    "(apt-get install chromium)")
@pytest.mark.needs_shared_data
def test_browser_demo_shows_the_spoken_keywords_live(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    wav = tmp_path / "mic.wav"
    truth = keyword_recording(wav, 44100)
    length = 8.0  # the fake microphone loops the file
    proc, base = start_server()
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-audio-capture={wav}"])
            try:
                page = browser.new_context(permissions=["microphone"],
                                           viewport={"width": 1000, "height": 760}).new_page()
                page.goto(base + "/")
                page.wait_for_function("document.getElementById('model').textContent"
                                       ".includes('Hz')")
                page.click("#start")
                page.wait_for_function("document.querySelectorAll('tr.detection').length >= 2",
                                       timeout=30_000)
                rows = page.eval_on_selector_all(
                    "tr.detection", "rs => rs.map(r => [r.dataset.keyword, +r.dataset.time])")
                status = page.inner_text("#status")
                page.screenshot(path=str(tmp_path / "demo.png"))
            finally:
                browser.close()
    finally:
        stop(proc)
    assert "listening" in status and "→ 16000 Hz" in status
    for keyword, time_s in rows:
        offsets = [abs((time_s - centre + length / 2) % length - length / 2)
                   for word, centre in truth if word == keyword]
        assert offsets and min(offsets) < 0.6, (keyword, time_s, truth)
    assert {k for k, _ in rows} == {"yes", "stop"}
    assert (tmp_path / "demo.png").read_bytes()[:4] == b"\x89PNG"
