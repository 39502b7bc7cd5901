"""How far streaming drifts for a "same"-padded TC-ResNet (the shipped model), measured on
streams, against scoring each window alone (what kwspot's engine does for such a model).

    python benchmarks/same_padding_drift.py --model shipped \
        --streams runs/streams/validation/keywords.wav runs/streams/validation/negatives.wav \
        --json docs/results/same-padding-drift.json

Every 80 ms (the network's total stride, so last-layer positions line up) each stream's
98-frame windows are scored three ways, from the same feature frames and the same weights:

- ``window``: the network on each window alone, zero padding at both of its edges. This is
  what the model was trained on and what the frame-cached engine computes: the reference.
- ``streamed``: the stack run once over the whole stream (zero padding only at the stream's
  two ends), each window's 13 last-layer positions averaged. This is what an exact
  incremental engine for "same" padding computes (kws_streaming's approach: every branch
  delayed to the slowest, residual sums included). It can emit a window only once the right
  half of the receptive field has arrived: ``lookahead_frames`` later.
- ``causal-weights``: the same weights in the causal stack (left padding only, residual sums
  therefore misaligned), each window's positions averaged over the stream's real history:
  what pushing this model through kwspot's causal streaming engine unchanged would compute.

Reported per mode: the posterior difference from ``window`` (median, p99, max), how often the
top class agrees, and FRR at <= 0.5 / 1 / 5 FA/h from a threshold sweep with the detector's
smoothing and refractory period (each window's event placed at its window's end, so the hit
tolerance is the same for all modes; the lookahead is reported separately, not added).
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from kwspot.audio import load_audio  # noqa: E402
from kwspot.checkpoint import load_classifier  # noqa: E402
from kwspot.classifier import KeywordClassifier  # noqa: E402
from kwspot.datasets.streams import read_truth  # noqa: E402
from kwspot.evaluate.streams import (  # noqa: E402
    TOLERANCE_S,
    ScoredStream,
    operating_points,
    sweep,
)
from kwspot.runtime.detector import Detector, DetectorConfig  # noqa: E402
from kwspot.runtime.frontend import NumpyFrontend  # noqa: E402

MODES = ("window", "streamed", "causal-weights")
MARGIN = 256  # frames of context around a chunk: more than the receptive field (171), x8
CHUNK = 8192  # frames per chunk of the whole-stream pass


def stream_frames(audio: np.ndarray, frontend: NumpyFrontend, hop: int, win: int,
                  piece_frames: int = 60_000) -> np.ndarray:
    """(C, T) frames of a whole stream, computed in pieces that join exactly."""
    total = 1 + (len(audio) - win) // hop
    parts = []
    for first in range(0, total, piece_frames):
        n = min(piece_frames, total - first)
        parts.append(frontend.frames(audio[first * hop : (first + n - 1) * hop + win]))
    return np.concatenate(parts, axis=1).astype(np.float32)


def trunk(network: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return network.blocks(network.stem(x))


def head(network: torch.nn.Module, pooled: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(network.classifier(pooled), -1).numpy()


def window_posteriors(network: torch.nn.Module, frames: np.ndarray, starts: np.ndarray,
                      length: int, batch: int = 512) -> np.ndarray:
    out = []
    x = torch.from_numpy(frames)
    with torch.no_grad():
        for i in range(0, len(starts), batch):
            windows = torch.stack([x[:, s : s + length] for s in starts[i : i + batch]])
            out.append(torch.softmax(network(windows), -1).numpy())
    return np.concatenate(out)


def positions_over_stream(network: torch.nn.Module, frames: np.ndarray, stride: int,
                          causal: bool) -> torch.Tensor:
    """Last-layer vectors at every ``stride``-th frame of the whole stream, (C, T // stride),
    computed chunk by chunk with enough context that each equals the one-pass result."""
    x = torch.from_numpy(frames)
    total = frames.shape[1]
    out = []
    with torch.no_grad():
        for a in range(0, total, CHUNK):
            b = min(total, a + CHUNK)
            lo = max(0, a - MARGIN)
            hi = b if causal else min(total, b + MARGIN)  # causal: no look ahead at all
            y = trunk(network, x[None, :, lo:hi])[0]
            first = (a - lo) // stride
            out.append(y[:, first : first + -(-(b - a) // stride)])
    return torch.cat(out, dim=1)


def lookahead_frames(network: torch.nn.Module, channels: int, stride: int) -> int:
    """How many frames after a last-layer position's own frame still change it."""
    x = torch.randn(1, channels, 400, generator=torch.Generator().manual_seed(0),
                    requires_grad=True)  # not zeros: ReLUs at 0 pass no gradient
    y = trunk(network, x)
    position = 20
    y[0, :, position].sum().backward()
    touched = np.nonzero(x.grad[0].abs().sum(0).numpy())[0]
    return int(touched.max()) - position * stride


def score(args: argparse.Namespace) -> dict:
    model, _ = load_classifier(args.model)
    features = model.features
    causal_model = KeywordClassifier("tc-resnet8-causal", model.labels, features)
    causal_model.load_state_dict(model.state_dict())
    causal_model.eval()
    networks = {"window": model.network, "streamed": model.network,
                "causal-weights": causal_model.network}
    stride = model.network.total_stride
    length = features.num_frames
    positions = -(-length // stride)
    hop, win = features.hop_length, features.win_length
    frontend = NumpyFrontend(features)
    # the detector's own smoothing, at this benchmark's hop (an export with these labels)
    smoother = Detector(args.export, DetectorConfig(hop_ms=stride * features.hop_ms,
                                                    smooth_ms=args.smooth_ms))
    if smoother.model.labels != model.labels:
        raise SystemExit("--export must be the export of --model")
    keywords = smoother.keywords
    scored: dict[str, list[ScoredStream]] = {m: [] for m in MODES}
    diffs: dict[str, list[np.ndarray]] = {m: [] for m in MODES[1:]}
    agree: dict[str, list[np.ndarray]] = {m: [] for m in MODES[1:]}
    for stream in args.streams:
        wav, truth = read_truth(stream)
        audio = load_audio(wav, features.sample_rate)
        frames = stream_frames(audio, frontend, hop, win)
        starts = np.arange(0, frames.shape[1] - length + 1, stride)
        ends = (starts + length - 1) * hop / features.sample_rate + win / features.sample_rate
        post = {"window": window_posteriors(model.network, frames, starts, length)}
        for mode, causal in (("streamed", False), ("causal-weights", True)):
            y = positions_over_stream(networks[mode], frames, stride, causal)
            means = y.unfold(1, positions, 1).mean(-1)  # (C, windows): each start's mean
            with torch.no_grad():
                post[mode] = head(networks[mode], means[:, starts // stride].T)
        for mode in MODES:
            smoother.reset()
            smoothed = smoother.accept(ends, post[mode])[1]
            scored[mode].append(ScoredStream(Path(wav).stem, float(truth["duration_s"]), ends,
                                             smoothed, truth["events"],
                                             truth.get("negatives", [])))
            if mode != "window":
                diffs[mode].append(np.abs(post[mode] - post["window"]).max(axis=1))
                agree[mode].append(post[mode].argmax(1) == post["window"].argmax(1))
        print(f"{Path(wav).name}: {len(starts)} windows", flush=True)
    cfg = DetectorConfig()
    result: dict = {
        "model": args.model, "streams": [str(s) for s in args.streams],
        "hop_ms": stride * features.hop_ms, "smooth_ms": args.smooth_ms,
        "refractory_ms": cfg.refractory_ms, "tolerance_s": TOLERANCE_S,
        "lookahead_frames": lookahead_frames(model.network, features.num_channels, stride),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores", "modes": {},
    }
    window_s = (length - 1) * hop / features.sample_rate + win / features.sample_rate
    for mode in MODES:
        rows = sweep(scored[mode], keywords, cfg.refractory_ms / 1000, TOLERANCE_S, window_s)
        entry: dict = {"operating_points": operating_points(rows, keywords)["overall"]}
        if mode != "window":
            d = np.concatenate(diffs[mode])
            entry["max_posterior_difference"] = {
                "median": float(np.median(d)), "p99": float(np.quantile(d, 0.99)),
                "max": float(d.max())}
            entry["top_class_agreement"] = float(np.concatenate(agree[mode]).mean())
        result["modes"][mode] = entry
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="shipped", help="checkpoint of a same-padded "
                        "TC-ResNet8 (default: the shipped one)")
    parser.add_argument("--streams", nargs="+", required=True)
    parser.add_argument("--export", default="shipped",
                        help="the export of --model, whose detector smooths the scores")
    parser.add_argument("--smooth-ms", type=float, default=300.0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = score(args)
    print(f"lookahead of an exact streamed 'same' model: {result['lookahead_frames']} frames")
    for mode, entry in result["modes"].items():
        points = entry["operating_points"]
        frr = " / ".join(f"{100 * points[k]['frr']:.1f}" if points.get(k) else "-"
                         for k in ("0.5", "1", "5"))
        extra = ""
        if "max_posterior_difference" in entry:
            d = entry["max_posterior_difference"]
            extra = (f"; |dp| median {d['median']:.3g}, p99 {d['p99']:.3g}, max "
                     f"{d['max']:.3g}; top class agrees {100 * entry['top_class_agreement']:.2f}%")
        print(f"{mode:15s} FRR at <=0.5/1/5 FA/h: {frr} %{extra}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
