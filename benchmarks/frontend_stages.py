"""Where the exported front end spends its time: the audio-in graph's ``MatmulFrontend`` cut
after each stage, each cut converted to TFLite (float32) and timed on one thread (median of
single 1 s clips), beside the multiply-adds each stage does and the network's.

    python benchmarks/frontend_stages.py --json docs/results/frontend-stages.json

Times are cumulative (a graph that stops after the stage). Needs ``kwspot[tflite]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kwspot.bench import time_calls
from kwspot.export.tflite import convert, interpreter
from kwspot.features import FeatureConfig, MatmulFrontend
from kwspot.models import build_model
from kwspot.profile import count_flops
from kwspot.runtime.tflite_model import Runner

STAGES = ("framing", "stage 1 DFT", "twiddle", "stage 2 DFT + power", "mel + log + DCT")


class UpTo(nn.Module):
    """``MatmulFrontend`` stopped after stage ``stop`` (an index into its ``STAGES``)."""

    def __init__(self, frontend: MatmulFrontend, stop: int) -> None:
        super().__init__()
        self.fe, self.stop = frontend, stop

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = audio
        for stage in MatmulFrontend.STAGES[: self.stop + 1]:
            x = getattr(self.fe, stage)(x)
        return x


def multiply_adds(fe: MatmulFrontend) -> dict[str, int]:
    """Per 1 s window, from the matrices' shapes (elementwise products counted as one)."""
    cfg, frames = fe.cfg, fe.cfg.num_frames
    channels = cfg.n_mfcc if cfg.kind == "mfcc" else 0
    return {
        "stage 1 DFT": frames * 2 * fe.n1 * fe.rows * fe.n2,
        "twiddle": frames * 4 * fe.n1 * fe.n2,
        "stage 2 DFT + power": frames * fe.n1 * 2 * fe.n2 * 2 * fe.k2_count,
        "mel + log + DCT": frames * (fe.n1 * fe.k2_count * cfg.n_mels + cfg.n_mels * channels),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = FeatureConfig()
    fe = MatmulFrontend(cfg)
    clip = np.random.default_rng(0).uniform(-0.3, 0.3, (1, cfg.clip_samples)).astype(np.float32)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for stop, name in enumerate(STAGES):
            path = Path(tmp) / f"stage{stop}.tflite"
            convert(UpTo(fe, stop), torch.from_numpy(clip), path)
            runner = Runner(interpreter(path))
            median, p90 = time_calls(lambda r=runner: r(clip), args.runs, 200)
            rows.append({"up_to": name, "median_ms": round(median, 4), "p90_ms": round(p90, 4)})
            print(f"up to {name:22s} {median:.3f} ms (p90 {p90:.3f})", flush=True)
    macs = multiply_adds(fe)
    network = build_model("tc-resnet8", cfg.num_channels, 12)
    network_macs = count_flops(network, (cfg.num_channels, cfg.num_frames)) // 2
    print(f"front end {sum(macs.values()) / 1e6:.2f} M multiply-adds, "
          f"TC-ResNet8 {network_macs / 1e6:.2f} M")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "measured": time.strftime("%Y-%m-%d"), "runtime": "ai-edge-litert, 1 thread",
            "cumulative": rows, "multiply_adds": macs,
            "frontend_multiply_adds": sum(macs.values()),
            "tc_resnet8_multiply_adds": network_macs}, indent=2) + "\n")


if __name__ == "__main__":
    main()
