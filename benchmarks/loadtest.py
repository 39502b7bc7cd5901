"""Load test for `kwspot serve`, on loopback only: N WebSocket streams sent at real-time pace
plus a burst of HTTP detects, against a server started here, for each setting compared.

    python benchmarks/loadtest.py [--streams 100] [--seconds 60] [--workers 1,2]
        [--batch-wait-ms 0,2] [--burst 20] [--json docs/results/loadtest.json]

Per setting (workers x batching) it starts `kwspot serve` on a free 127.0.0.1 port and
reports:
- delivery: every stream's events against the offline detector (`kwspot detect`'s code) run
  on the same int16 audio; missing or extra events are counted, not hidden;
- event latency: time the event arrived minus the time the client sent the frame that
  completed the event's window (so the model's own detection delay is excluded): p50/p99;
- errors: failed connections, unexpected closes, non-200 detects;
- HTTP: latency of a burst of concurrent POST /v1/detect of a 10 s file mid-run;
- server CPU (all its processes) as cores busy, model calls and windows per call (/metrics);
- memory: the server's RSS (all processes) over the run: first 10 s, last 10 s, peak.

The client runs on the same machine and shares its cores with the server: a real deployment
has the load generator elsewhere, so these numbers are conservative.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx
import numpy as np
import psutil
import soundfile as sf
import websockets

from kwspot.audio import load_audio
from kwspot.runtime import DetectorConfig, load_keyword_model
from kwspot.runtime.detector import detect_audio

RATE = 16000
CHUNK_S = 0.1  # what a client sends per frame (100 ms of int16 PCM)
DEFAULT_CLIPS = Path(__file__).parents[1].parent / "shared" / "data" / \
    "speech_commands_lite_test"


def keyword_bed(seconds: float, clips: Path, seed: int = 0) -> np.ndarray:
    """Held-out Speech Commands test clips (keywords and others) every ~2.5 s in quiet noise;
    noise bursts instead when the clips are not there."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    audio = rng.normal(0, 0.003, n).astype(np.float32)
    files = sorted(clips.glob("*/*.wav")) if clips.is_dir() else []
    files = [f for f in files if f.parent.name != "_silence_"]
    for start in np.arange(0.5, seconds - 1.5, 2.5):
        s = int((start + rng.uniform(0, 0.5)) * RATE)
        if files:
            clip = load_audio(files[rng.integers(len(files))])[: RATE]
        else:
            clip = (rng.standard_normal(RATE // 2) * np.hanning(RATE // 2) * 0.2)
        audio[s : s + len(clip)] += clip.astype(np.float32)
    return np.clip(audio, -1, 1 - 1 / 32768)


def to_int16(audio: np.ndarray) -> np.ndarray:
    return np.round(audio * 32768).astype("<i2")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class StreamResult:
    events: list[tuple[str, float]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    error: str | None = None


async def run_stream(url: str, pcm: np.ndarray, start_delay: float) -> StreamResult:
    result = StreamResult()
    chunk = int(CHUNK_S * RATE)
    sent_at: list[float] = []
    try:
        await asyncio.sleep(start_delay)
        async with websockets.connect(url, max_queue=None) as ws:
            json.loads(await ws.recv())  # ready

            async def receive() -> None:
                async for text in ws:
                    msg = json.loads(text)
                    if msg["type"] == "detection":
                        now = time.perf_counter()
                        result.events.append((msg["keyword"], msg["end_s"]))
                        # the frame that completed the window ending at end_s
                        k = min(len(sent_at) - 1, int(np.ceil(msg["end_s"] / CHUNK_S - 1e-6)) - 1)
                        if 0 <= k < len(sent_at) and msg["end_s"] <= len(pcm) / RATE:
                            result.latencies.append(now - sent_at[k])

            receiver = asyncio.create_task(receive())
            t0 = time.perf_counter()
            for k, i in enumerate(range(0, len(pcm), chunk)):
                delay = t0 + k * CHUNK_S - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent_at.append(time.perf_counter())
                await ws.send(pcm[i : i + chunk].tobytes())
            await ws.send(b"")  # end of stream: the server flushes and closes
            await asyncio.wait_for(receiver, 30)
            if ws.close_code != 1000:
                result.error = f"closed {ws.close_code} {ws.close_reason}"
    except Exception as exc:  # every failure is counted, none stops the run
        result.error = f"{type(exc).__name__}: {exc}"
    return result


async def http_burst(base: str, wav: bytes, count: int) -> tuple[list[float], int]:
    async with httpx.AsyncClient(timeout=60) as client:
        async def one() -> tuple[float, int]:
            start = time.perf_counter()
            response = await client.post(base + "/v1/detect", content=wav)
            return time.perf_counter() - start, response.status_code

        results = await asyncio.gather(*(one() for _ in range(count)))
    return [t for t, _ in results], sum(s != 200 for _, s in results)


def tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


async def sample_server(proc: psutil.Process, rss: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        total = 0
        for p in tree(proc):
            with contextlib.suppress(psutil.NoSuchProcess):
                total += p.memory_info().rss
        rss.append(total / 2**20)
        await asyncio.sleep(1.0)


def cpu_seconds(proc: psutil.Process) -> float:
    total = 0.0
    for p in tree(proc):
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith(name + " ") or line.startswith(name + "{"))


def start_server(model: str | None, workers: int, wait_ms: float, streams: int, burst: int
                 ) -> tuple[subprocess.Popen, str]:
    port = free_port()
    # room for every stream and every upload of the burst in one worker (the kernel may hand
    # them all to one): the test measures latency under load, not the load shedding
    cmd = [sys.executable, "-m", "kwspot.cli", "serve", "--port", str(port), "--workers",
           str(workers), "--batch-wait-ms", str(wait_ms), "--max-streams", str(streams + 10),
           "--max-pending-uploads", str(burst + 4)]
    if model:
        cmd += ["--model", model]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                time.sleep(1.0 if workers > 1 else 0)  # let every worker come up
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start")


async def one_setting(base: str, proc: subprocess.Popen, pcms: list[np.ndarray],
                      burst_wav: bytes, burst: int, seconds: float) -> dict:
    server = psutil.Process(proc.pid)
    rss: list[float] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_server(server, rss, stop))
    url = base.replace("http", "ws") + "/v1/stream?sample_rate=16000&format=int16"
    cpu0, wall0 = cpu_seconds(server), time.perf_counter()
    tasks = [asyncio.create_task(run_stream(url, pcm, i * CHUNK_S / len(pcms)))
             for i, pcm in enumerate(pcms)]
    await asyncio.sleep(seconds / 2)
    burst_latency, burst_errors = await http_burst(base, burst_wav, burst) if burst else ([], 0)
    results = await asyncio.gather(*tasks)
    wall = time.perf_counter() - wall0
    cpu = cpu_seconds(server) - cpu0
    stop.set()
    await sampler
    metrics = httpx.get(base + "/metrics").text
    return {"results": results, "rss": rss, "burst_latency": burst_latency,
            "burst_errors": burst_errors, "cpu_cores": cpu / wall,
            "model_calls": metric(metrics, "kwspot_model_calls_total"),
            "windows": metric(metrics, "kwspot_batch_windows_sum")}


def summarize(run: dict, expected: list[list[tuple[str, float]]], setting: dict) -> dict:
    results: list[StreamResult] = run["results"]
    missing = extra = 0
    for got, want in zip(results, expected, strict=True):
        g, w = sorted(got.events), sorted(want)
        missing += len([e for e in w if e not in g])
        extra += len([e for e in g if e not in w])
    latencies = np.array([x for r in results for x in r.latencies]) * 1000
    rss = run["rss"]
    head, tail = rss[:10], rss[-10:]
    return {
        **setting,
        "streams": len(results),
        "stream_errors": sum(r.error is not None for r in results),
        "first_errors": sorted({r.error for r in results if r.error})[:3],
        "events_expected": sum(len(w) for w in expected),
        "events_missing": missing,
        "events_extra": extra,
        "event_latency_ms_p50": round(float(np.percentile(latencies, 50)), 1)
        if len(latencies) else None,
        "event_latency_ms_p99": round(float(np.percentile(latencies, 99)), 1)
        if len(latencies) else None,
        "event_latency_ms_max": round(float(latencies.max()), 1) if len(latencies) else None,
        "detect_burst": len(run["burst_latency"]),
        "detect_errors": run["burst_errors"],
        "detect_latency_ms_p50": round(1000 * float(np.median(run["burst_latency"])), 1)
        if run["burst_latency"] else None,
        "detect_latency_ms_max": round(1000 * max(run["burst_latency"]), 1)
        if run["burst_latency"] else None,
        "server_cpu_cores": round(run["cpu_cores"], 2),
        "model_calls": int(run["model_calls"]),
        "windows_per_call": round(run["windows"] / max(run["model_calls"], 1), 2),
        "rss_mb_first_10s": round(float(np.mean(head)), 1) if head else None,
        "rss_mb_last_10s": round(float(np.mean(tail)), 1) if tail else None,
        "rss_mb_peak": round(max(rss), 1) if rss else None,
        "rss_mb_every_5s": [round(x, 1) for x in rss[::5]],
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--batch-wait-ms", default="0,2")
    parser.add_argument("--burst", type=int, default=20, help="concurrent POST /v1/detect")
    parser.add_argument("--clips", type=Path, default=DEFAULT_CLIPS,
                        help="folder-per-label clips to speak in the streams")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    bed = keyword_bed(args.seconds + args.streams * 0.37 + 1, args.clips)
    n = int(args.seconds * RATE)
    # each stream a different slice of the bed, int16 as sent
    pcms = [to_int16(bed[int(i * 0.37 * RATE) : int(i * 0.37 * RATE) + n])
            for i in range(args.streams)]
    model = load_keyword_model(args.model)  # the server's loader: .onnx or .tflite
    cfg = DetectorConfig()
    expected = [[(e.keyword, round(e.end_s, 3))
                 for e in detect_audio(p, model, cfg)]  # int16, as the server gets it
                for p in pcms]
    buffer = io.BytesIO()
    sf.write(buffer, bed[: 10 * RATE], RATE, format="WAV", subtype="PCM_16")
    burst_wav = buffer.getvalue()

    rows = []
    for workers in (int(x) for x in args.workers.split(",")):
        for wait_ms in (float(x) for x in args.batch_wait_ms.split(",")):
            setting = {"workers": workers, "batch_wait_ms": wait_ms}
            proc, base = start_server(args.model, workers, wait_ms, args.streams, args.burst)
            try:
                run = asyncio.run(one_setting(base, proc, pcms, burst_wav, args.burst,
                                              args.seconds))
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            row = summarize(run, expected, setting)
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {"command": "python benchmarks/loadtest.py " + " ".join(argv or sys.argv[1:]),
                  "machine": f"{os.cpu_count()} cores", "streams": args.streams,
                  "seconds": args.seconds, "audio": str(args.clips) if args.clips.is_dir()
                  else "generated bursts", "rows": rows}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
