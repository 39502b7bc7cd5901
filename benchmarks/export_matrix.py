"""Which kwspot models export to which format and precision, and what each costs: every
architecture in ``kwspot.models.MODELS`` through ``kwspot export``'s library functions (ONNX,
TFLite; float32, int8), with the parity each export measured, its size and the single-thread
latency of its audio-in graph (raw audio -> posteriors, median and p90).

    python benchmarks/export_matrix.py --json docs/results/export-matrix.json

Untrained weights (seeded): operator support, size and speed do not depend on training, and
every architecture can be covered without a checkpoint for each. int8 is calibrated on noise
bursts here, so its posterior difference says nothing about accuracy (``kwspot
verify-export`` measures that on a trained model). A failed export is a row with its error.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from kwspot.bench import time_calls
from kwspot.classifier import KeywordClassifier
from kwspot.data import SILENCE, SPEECH_COMMANDS_KEYWORDS, UNKNOWN
from kwspot.errors import KwspotError
from kwspot.export import export_onnx, parity_clips
from kwspot.export.calibration import calibration_log
from kwspot.export.tflite import export_tflite
from kwspot.models import MODELS
from kwspot.runtime.model import load_keyword_model, network_path
from kwspot.training.recipes import recipe_for

LABELS = [SILENCE, UNKNOWN, *SPEECH_COMMANDS_KEYWORDS]


def measure(name: str, fmt: str, precision: str, folder: Path, runs: int) -> dict:
    torch.manual_seed(0)
    model = KeywordClassifier(name, LABELS, recipe_for(name).features).eval()  # its input
    audio = parity_clips(None, 8, 16000, seed=1)
    calibration = (parity_clips(None, 64, 16000, seed=2),
                   calibration_log(["noise bursts"], 2, "benchmarks/export_matrix.py"))
    out = folder / fmt / f"{name}.{precision}.{fmt}"  # one folder per format: one card each
    export = export_onnx if fmt == "onnx" else export_tflite
    row: dict = {"model": name, "format": fmt, "precision": precision}
    start = time.perf_counter()
    try:
        card = export(model, out, audio, precision=precision,
                      calibration=calibration if precision == "int8" else None)
    except KwspotError as exc:
        return row | {"exported": False, "error": str(exc)}
    row["export_s"] = round(time.perf_counter() - start, 1)
    row["exported"] = True
    row["float_parity"] = card["parity"]["max_abs_diff"]
    if precision == "int8":
        row["int8_diff_on_noise"] = card["quantization"]["max_abs_diff_from_float"]
    network = network_path(out)
    row["size_kb"] = round(out.stat().st_size / 1024, 1)
    row["network_size_kb"] = round(network.stat().st_size / 1024, 1)
    runtime = load_keyword_model(out, threads=1)
    clip = audio[:1]
    median, p90 = time_calls(lambda: runtime.posteriors(clip), runs, 100)
    row["audio_ms"] = {"median": round(median, 4), "p90": round(p90, 4), "runs": runs}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=sorted(MODELS))
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            for fmt in ("onnx", "tflite"):
                for precision in ("float32", "int8"):
                    row = measure(name, fmt, precision, Path(tmp), args.runs)
                    rows.append(row)
                    ms = row.get("audio_ms", {}).get("median")
                    print(f"{name:20s} {fmt:6s} {precision:7s} "
                          + (f"{row['size_kb']:7.1f} KB  {ms:.3f} ms" if row["exported"]
                             else f"FAILED: {row['error'][:120]}"), flush=True)
    if args.json:
        result = {"measured": time.strftime("%Y-%m-%d"), "threads": 1,
                  "torch": torch.__version__, "numpy": np.__version__, "rows": rows}
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
