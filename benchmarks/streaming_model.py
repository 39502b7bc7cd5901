"""Per-output cost on one thread: StreamingTCResNet fed 8 frames a call vs forward() on 98 frames.

Run: python benchmarks/streaming_model.py [--model tc-resnet8-causal] [--calls 3000] [--batch 1]

At batch 1 both are bound by per-op dispatch (a streaming step is ~45 small ops), so the ratio is
far below the FLOP ratio printed beside it; a larger --batch (streams run together) shows compute.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from kwspot.models import build_model
from kwspot.models.streaming import StreamingTCResNet
from kwspot.models.tc_resnet import TCResNet
from kwspot.profile import count_flops


def median_us(step: Callable[[int], None], calls: int, warmup: int) -> float:
    for i in range(warmup):
        step(i)
    times = []
    for i in range(calls):
        start = time.perf_counter_ns()
        step(i)
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tc-resnet8-causal")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--batch", type=int, default=1, help="streams per call; cost is per output")
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model(args.model, 40, 12)
    assert isinstance(model, TCResNet)
    streamer = StreamingTCResNet(model, window_frames=98)
    stride = model.total_stride
    chunks = torch.randn(64, args.batch, 40, stride)
    windows = torch.randn(64, args.batch, 40, 98)
    state = streamer.init_state(args.batch)

    def stream_step(i: int) -> None:
        nonlocal state
        logits, state = streamer(chunks[i % 64], state)
        assert logits.shape[1] == 1

    def window_step(i: int) -> None:
        model(windows[i % 64])

    with torch.inference_mode():
        streaming = median_us(stream_step, args.calls, args.warmup) / args.batch
        full = median_us(window_step, args.calls, args.warmup) / args.batch
    long = 800  # per-output FLOPs of a stream: a long input's FLOPs over its outputs
    stream_flops = count_flops(model, (40, long)) / (long // stride)
    full_flops = count_flops(model, (40, 98))
    print(f"{args.model}, 1 thread, batch {args.batch}, torch {torch.__version__}, "
          f"median of {args.calls} calls")
    print(f"streaming, {stride} new frames per output: {streaming:8.1f} us/output "
          f"({stream_flops / 1e6:.2f} MFLOPs)")
    print(f"forward() on the 98-frame window:   {full:8.1f} us/output "
          f"({full_flops / 1e6:.2f} MFLOPs)")
    print(f"ratio full / streaming:             {full / streaming:8.2f}x "
          f"(FLOPs {full_flops / stream_flops:.1f}x)")


if __name__ == "__main__":
    main()
