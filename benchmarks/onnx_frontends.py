"""The two exported front ends in ONNX Runtime, side by side in one run, one thread: the
shipped TC-ResNet8's audio-in graph with the matmul FFT (``MatmulFrontend``, what TFLite gets)
and with the one-convolution FFT (``ConvFrontend``, what ONNX exports get since 2026-12-07),
and its network alone (features in), so the front end's share shows. All three hold the
network as trained (1-D convolutions); exports write it as (1 x k) 2-D convolutions since
2026-12-07 (``kwspot.models.layout``), which ``kwspot bench`` times.

    python benchmarks/onnx_frontends.py --runs 3000 --json docs/results/onnx-frontends.json

The graphs take turns over ``--rounds`` rounds; each figure is the median over the rounds of
the per-round median (and p90) of ``--runs`` single calls.
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from kwspot.bench import time_onnx  # noqa: E402
from kwspot.checkpoint import load_classifier  # noqa: E402
from kwspot.classifier import PosteriorsAndLogits  # noqa: E402
from kwspot.export import export_module  # noqa: E402
from kwspot.features import ConvFrontend, MatmulFrontend  # noqa: E402
from kwspot.runtime.model import onnx_session  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="shipped")
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, _ = load_classifier(args.checkpoint)
    audio = np.random.default_rng(0).uniform(-0.3, 0.3, (1, model.features.clip_samples)) \
        .astype(np.float32)
    with torch.no_grad():
        features = model.frontend(torch.from_numpy(audio)).numpy()
    graphs: dict[str, tuple[Path, np.ndarray]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, frontend in (("matmul", MatmulFrontend), ("conv", ConvFrontend)):
            path = Path(tmp) / f"{name}.onnx"
            graph = PosteriorsAndLogits(nn.Sequential(frontend(model.features), model.network))
            export_module(graph.eval(), torch.from_numpy(audio), path, "audio",
                          ["posteriors", "logits"])
            with torch.no_grad():
                want = graph(torch.from_numpy(audio))[0].numpy()
            session = onnx_session(path, 1)
            got = session.run(None, {"audio": audio})[0]
            assert np.abs(got - want).max() < 1e-4, f"{name}: the export differs from torch"
            graphs[name] = (path, audio)
        net = Path(tmp) / "net.onnx"
        export_module(model.network.eval(), torch.from_numpy(features), net, "features",
                      ["logits"])
        graphs["network only"] = (net, features)
        rounds: dict[str, list[tuple[float, float]]] = {name: [] for name in graphs}
        for _ in range(args.rounds):
            for name, (path, x) in graphs.items():
                rounds[name].append(time_onnx(path, x, args.runs, args.runs // 10))
    result = {"checkpoint": args.checkpoint, "runs": args.runs, "rounds": args.rounds,
              "threads": 1, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "ms": {name: {"median": float(np.median([r[0] for r in v])),
                            "p90": float(np.median([r[1] for r in v]))}
                     for name, v in rounds.items()}}
    ms = result["ms"]
    for name in ("matmul", "conv"):
        ms[name]["front_end"] = ms[name]["median"] - ms["network only"]["median"]
    result["conv_speedup"] = ms["matmul"]["median"] / ms["conv"]["median"]
    for name, figures in ms.items():
        extra = f", front end ~{figures['front_end']:.3f}" if "front_end" in figures else ""
        print(f"{name:13s} median {figures['median']:.3f} ms, p90 {figures['p90']:.3f}{extra}")
    print(f"audio graph: conv {result['conv_speedup']:.2f}x the matmul front end's speed")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
