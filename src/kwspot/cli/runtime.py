"""``kwspot detect``, ``listen``, ``serve``, ``demo``: running a model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kwspot.cli.common import add_detector_args, detector_config
from kwspot.errors import KwspotError


def add_detect_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect", help="find keywords in recordings of any length",
                       description="Stream each file through the detector (decoded block by "
                       "block, so hours of audio need little memory) and print every detected "
                       "keyword with its time and score. Posteriors are averaged over "
                       "--smooth-ms; a keyword fires when it reaches its threshold (the model "
                       "card's calibrated thresholds unless --threshold is given), then nothing "
                       "fires until the scores fall and --refractory-ms has passed. '-' reads "
                       "a WAV from standard input. Uses the shipped TC-ResNet8 unless --model "
                       "is given.")
    p.add_argument("files", nargs="+", help="audio files (WAV/FLAC/OGG, any rate, mono/stereo) "
                   "or - for standard input")
    add_detector_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object per detection")
    p.set_defaults(func=cmd_detect)


def cmd_detect(args: argparse.Namespace) -> None:
    import json

    from kwspot.audio import iter_audio_blocks
    from kwspot.errors import AudioError
    from kwspot.runtime.detector import Detector, iter_detections
    from kwspot.runtime.model import load_keyword_model

    model = load_keyword_model(args.model)
    cfg = detector_config(args)
    keywords = list(args.keywords) if args.keywords else None
    failures = 0
    for file in args.files:
        # standard input is read as it arrives (a pipe from a recorder stays live): small
        # blocks, each event printed and flushed as soon as it fires
        blocks = iter_audio_blocks(sys.stdin.buffer, model.sample_rate, block_seconds=0.1) \
            if file == "-" else iter_audio_blocks(file, model.sample_rate)
        found = 0
        try:
            for e in iter_detections(blocks, Detector(model, cfg, keywords)):
                found += 1
                if args.json:
                    print(json.dumps({"file": file, "keyword": e.keyword,
                                      "time_s": round(e.time_s, 2),
                                      "score": round(e.score, 3)}), flush=True)
                else:
                    print(f"{file}\t{e.time_s:7.2f}s\t{e.keyword}\t{e.score:.3f}", flush=True)
        except AudioError as exc:
            print(f"kwspot: error: {exc}", file=sys.stderr)
            failures += 1
            continue
        if not found and not args.json:
            print(f"{file}\t(no keyword)")
    if failures:
        raise KwspotError(f"{failures} of {len(args.files)} files could not be read")


def add_listen_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("listen", help="detect keywords on the microphone, live",
                       description="Stream the default (or --device) microphone through the "
                       "detector and print each keyword as it fires. Needs the optional "
                       "sounddevice package: pip install 'kwspot[listen]'.")
    add_detector_args(p)
    p.add_argument("--device", default=None, help="input device name or index")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long")
    p.set_defaults(func=cmd_listen)


def cmd_listen(args: argparse.Namespace) -> None:
    from kwspot.runtime.listen import listen

    def show(event) -> None:
        print(f"{event.end_s:8.2f}s\t{event.keyword}\t{event.score:.3f}", flush=True)

    device = int(args.device) if args.device and args.device.isdigit() else args.device
    listen(args.model, detector_config(args), device, args.seconds, show,
           on_start=lambda: print("listening; Ctrl-C stops", file=sys.stderr))


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="HTTP/WebSocket detection server with a browser demo",
                       description="Serve a model over HTTP (POST /v1/detect, /v1/classify) "
                       "and WebSocket (/v1/stream: PCM in, events out), with /healthz, "
                       "/metrics (Prometheus) and a microphone demo at /. Windows from all "
                       "streams are micro-batched into one model call. Binding to a "
                       "non-loopback address needs an API key (KWSPOT_API_KEY or "
                       "--api-key-file). Needs the optional extra: pip install "
                       "'kwspot[serve]'.")
    add_detector_args(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--api-key-file", default=None, metavar="FILE",
                   help="file holding the bearer token clients must send (default: "
                        "$KWSPOT_API_KEY; required off loopback)")
    p.add_argument("--batch-wait-ms", type=float, default=2.0,
                   help="longest a window waits for others to share a model call; 0 turns "
                        "micro-batching off (default 2)")
    p.add_argument("--max-batch", type=int, default=256, help="windows per model call at most")
    p.add_argument("--max-streams", type=int, default=200,
                   help="open streams per worker; more get 503 + Retry-After (default 200)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="upload size limit")
    p.add_argument("--max-upload-s", type=float, default=3600.0,
                   help="longest audio an upload may decode to (default 3600)")
    p.add_argument("--max-stream-s", type=float, default=3600.0,
                   help="longest a stream may run (default 3600)")
    p.add_argument("--idle-timeout-s", type=float, default=30.0,
                   help="close a stream that sends nothing this long (default 30)")
    p.add_argument("--max-pending-uploads", type=int, default=16,
                   help="uploads waiting per worker; more get 503 + Retry-After (default 16)")
    p.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="a web origin (e.g. https://app.example) whose pages may open "
                        "streams; the server's own page always may (repeatable)")
    p.add_argument("--ray-replicas", type=int, default=None, metavar="N",
                   help="run as a Ray Serve deployment with N replicas and Ray's request "
                        "batching instead of uvicorn workers (pip install 'kwspot[ray]')")
    p.add_argument("--ray-address", default=None,
                   help="Ray cluster to deploy to (default: $RAY_ADDRESS, else a local Ray)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> None:
    import os

    try:
        from kwspot.serving import ServeConfig, serve
        from kwspot.serving.app import create_app  # noqa: F401 - is FastAPI installed?
    except ImportError as exc:
        raise KwspotError(f"kwspot serve needs the optional extra ({exc.name} is missing): "
                          "pip install 'kwspot[serve]'") from None
    api_key = os.environ.get("KWSPOT_API_KEY") or None
    if args.api_key_file:
        try:
            api_key = Path(args.api_key_file).read_text().strip() or None
        except (OSError, UnicodeDecodeError) as exc:
            raise KwspotError(f"{args.api_key_file}: cannot read the API key ({exc})") from None
    config = ServeConfig(
        model=args.model, host=args.host, port=args.port, workers=args.workers,
        api_key=api_key, detector=detector_config(args), max_upload_mb=args.max_upload_mb,
        max_upload_s=args.max_upload_s, max_stream_s=args.max_stream_s,
        idle_timeout_s=args.idle_timeout_s, max_streams=args.max_streams,
        batch_wait_ms=args.batch_wait_ms, max_batch=args.max_batch,
        max_pending_uploads=args.max_pending_uploads, allowed_origins=tuple(args.allow_origin))
    if args.ray_replicas is None:
        serve(config)
        return
    if args.ray_replicas < 1:
        raise KwspotError(f"--ray-replicas must be at least 1, got {args.ray_replicas}")
    try:
        from kwspot.serving.ray_serve import run
    except ImportError as exc:
        raise KwspotError(f"--ray-replicas needs the optional extra ({exc.name} is missing): "
                          "pip install 'kwspot[ray]'") from None
    from kwspot.serving.server import check_model

    check_model(config)
    run(config, args.ray_replicas, blocking=True, address=args.ray_address)


def add_demo_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the whole lap on built-in synthetic data, no downloads",
                       description="Synthesize a small keyword set, train TC-ResNet8 briefly, "
                       "evaluate, export to ONNX, then detect keywords in a synthesized "
                       "sentence. Needs no external data; a few minutes on 2 cores.")
    p.add_argument("--out", default="runs/demo", metavar="DIR",
                   help="where everything goes (default runs/demo; replaced if it exists)")
    p.add_argument("--steps", type=int, default=1500, help="training steps (default 1500)")
    p.add_argument("--clips-per-word", type=int, default=150,
                   help="synthesized clips per keyword (default 150)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> None:
    from kwspot.demo import DemoConfig, run_demo

    run_demo(DemoConfig(out=Path(args.out), steps=args.steps,
                        clips_per_word=args.clips_per_word, seed=args.seed))
