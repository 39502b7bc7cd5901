"""Where a network's time goes, operator by operator: ONNX Runtime's own profiler on one
thread, each model's freshly built network (features in, logits out) as the table times it
(weights do not change the time). Written to find out why TC-ResNet8 (3.0M FLOPs) was not
faster than DS-CNN-S (5.3M) here although the paper found it 1.5x faster on a phone (its 1-D
convolutions missed ONNX Runtime's fused NCHWc kernels; exports now write them as 2-D).

    python benchmarks/operator_profile.py --models tc-resnet8 ds-cnn-s --runs 2000 \\
        --json docs/results/operator-profile.json

TC-ResNets are profiled twice: as exported (temporal convolutions as (1 x k) 2-D ones) and
with the 1-D convolutions they train with. Per graph: microseconds per run by operator type
(the kernels' own durations from the trace, summed and divided by ``--runs``: means, not
medians), kernels per run, the wall-clock median under the profiler, and the wall-clock
median of separate runs without it (the graphs taking turns), which is the one to compare.
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402


def networks(name: str) -> dict[str, tuple]:
    """The model's freshly built network as ``kwspot export`` writes it and, where the export
    rewrites it (``models.layout``), also as trained (1-D convolutions)."""
    import torch

    from kwspot.experiments.latency import _shape
    from kwspot.models import build_model
    from kwspot.models.layout import temporal_as_2d

    shape = _shape(name)
    torch.manual_seed(0)
    network = build_model(name, shape[1], 12, frames=shape[2]).eval()
    rewritten = temporal_as_2d(network)
    if rewritten is None:
        return {name: (network, network, shape)}
    return {f"{name} (2-D, as exported)": (rewritten, network, shape),
            f"{name} (1-D, as trained)": (network, network, shape)}


def profile_model(label: str, graph, network, shape, runs: int, warmup: int,
                  folder: Path) -> dict:
    import onnxruntime as ort
    import torch

    from kwspot.export import export_module
    from kwspot.profile import count_flops

    example = torch.randn(shape)
    name = label.split()[0] + ("-1d" if "1-D" in label else "")
    path = folder / f"{name}.onnx"
    export_module(graph, example, path, "features", "logits")
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = str(folder / name)
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: example.numpy()}
    for _ in range(warmup):
        session.run(None, feed)
    wall = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        session.run(None, feed)
        wall.append((time.perf_counter_ns() - start) / 1e3)
    trace = json.loads(Path(session.end_profiling()).read_text())
    kernels = [e for e in trace if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    measured = kernels[-len(kernels) * runs // (runs + warmup):]  # the timed runs only
    by_type: dict[str, float] = defaultdict(float)
    for event in measured:
        by_type[event["args"]["op_name"]] += event["dur"]
    per_run = {op: round(total / runs, 2) for op, total in
               sorted(by_type.items(), key=lambda kv: -kv[1])}
    return {"input": list(shape), "flops": count_flops(network, tuple(shape[1:])),
            "file": str(path), "wall_median_us_profiling": round(float(np.median(wall)), 2),
            "kernels_us_per_run": round(sum(per_run.values()), 2),
            "kernels_per_run": round(len(measured) / runs, 1), "by_op_type_us": per_run}


def plain_medians(files: dict[str, str], runs: int) -> dict[str, float]:
    """The same graphs without the profiler, taking turns as the table's timing does: median
    microseconds."""
    from kwspot.experiments.latency import time_sessions
    from kwspot.runtime.model import onnx_session

    sessions = {}
    for label, path in files.items():
        session = onnx_session(path, 1)
        item = session.get_inputs()[0]
        shape = [1 if isinstance(d, str) else d for d in item.shape]
        sessions[label] = (session, {item.name: np.random.default_rng(0).standard_normal(
            shape).astype(np.float32)})
    timed = time_sessions(sessions, runs, warmup=0)
    return {label: round(1000 * t["median_ms"], 2) for label, t in timed.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tc-resnet8", "ds-cnn-s"])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        graphs = {label: g for m in args.models for label, g in networks(m).items()}
        models = {label: profile_model(label, *g, args.runs, args.warmup, Path(tmp))
                  for label, g in graphs.items()}
        plain = plain_medians({label: r.pop("file") for label, r in models.items()}, args.runs)
    for name, r in models.items():
        r["wall_median_us"] = plain[name]
        print(f"{name}: {r['flops'] / 1e6:.1f} MFLOPs, median {r['wall_median_us']} us "
              f"(profiling: {r['wall_median_us_profiling']} us), "
              f"kernels {r['kernels_us_per_run']} us in {r['kernels_per_run']} kernels a run")
        for op, us in r["by_op_type_us"].items():
            print(f"    {op:24s} {us:8.2f} us")
    if args.json:
        record = {"command": "python benchmarks/operator_profile.py --models "
                             f"{' '.join(args.models)} --runs {args.runs}",
                  "engine": f"onnxruntime {ort.__version__}, CPU, 1 thread",
                  "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                  "runs": args.runs, "models": models}
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
