"""Running an exported model: ONNX Runtime and numpy only (no torch), so a deployment needs
neither PyTorch nor kwspot's training code. The model card beside the .onnx says how to feed it.

An export holds two graphs: ``<name>.onnx`` (raw audio -> posteriors, the portable single file)
and, when the card names one, ``<name>.net.onnx`` (features -> logits). The streaming engine
uses the second with the numpy front end, so each feature frame is computed once per stream.
A causal model's export adds ``<name>.stream.onnx`` (``runtime.incremental``), which the engine
then runs instead, so each layer's work is done once per stream too.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import onnxruntime as ort

from kwspot.errors import KwspotError
from kwspot.runtime.embedding_frontend import EmbeddingFeatures, EmbeddingFrontend
from kwspot.runtime.frontend import FeatureConfig, NumpyFrontend
from kwspot.runtime.incremental import StreamGraph

if TYPE_CHECKING:
    from kwspot.runtime.tflite_model import TfliteKeywordModel

PRETRAINED_NAME = "tc-resnet8-speech-commands"
SHIPPED = "shipped"  # names the shipped model wherever a model path is taken
# the second shipped model: a 12-class head on the frozen pretrained speech embedding (fewer
# false rejects at every false-alarm budget measured, ~20x the CPU of TC-ResNet8)
PRETRAINED_EMBEDDING_NAME = "speech-embedding-speech-commands"
SHIPPED_EMBEDDING = "shipped-embedding"
CARD_KEY = "kwspot_card"  # the card's key in a model file's metadata (ONNX and TFLite)
EXPORT_SUFFIXES = (".onnx", ".tflite")


def is_exported(path: str | Path) -> bool:
    """An exported model file (the runtime's), as opposed to a checkpoint or run folder."""
    return Path(path).suffix.lower() in EXPORT_SUFFIXES


def card_path(model_path: str | Path) -> Path:
    """The model card beside an exported model: ``<name>.json``."""
    return Path(model_path).with_suffix(".json")


def network_path(model_path: str | Path) -> Path:
    """The network graph beside an exported model: ``<name>.net.onnx`` / ``<name>.net.tflite``."""
    path = Path(model_path)
    return path.with_name(f"{path.stem}.net{path.suffix}")

# kwspot makes no network request at run time: ORT_DISABLE_TELEMETRY is set by ``kwspot``'s
# __init__ before onnxruntime loads; this covers a caller that imported onnxruntime first.
ort.disable_telemetry_events()


class KeywordModel(Protocol):
    """What the engine and the detector need from a model; ``OnnxKeywordModel`` is the real
    one, tests use small stand-ins."""

    labels: list[str]
    sample_rate: int
    window_samples: int
    thresholds: dict[str, float]
    path: Path

    def posteriors(self, windows: np.ndarray) -> np.ndarray: ...

    def frontend(self) -> NumpyFrontend | None: ...

    def network_posteriors(self, features: np.ndarray) -> np.ndarray: ...


# The speech embedding never heard digital silence in training (its windows always carry
# noise): a stream of exact zeros, as primed before its first sample and padded after its
# last, raised the shipped embedding model's "up" to ~0.7. Its streams are primed and flushed
# with this instead: seeded white noise at -80 dBFS RMS, below any microphone's noise floor.
EMBEDDING_SILENCE_RMS = 1e-4


def silence_for(model: object, samples: int) -> np.ndarray:
    """What a stream is primed and flushed with: zeros, or for models on the speech embedding
    (a card "embedding" entry) faint seeded noise (``EMBEDDING_SILENCE_RMS``), the same
    samples every time (made once per length, read-only)."""
    if getattr(model, "embedding", None) is None:
        return np.zeros(samples, np.float32)
    return _faint_noise(samples)


@functools.cache
def _faint_noise(samples: int) -> np.ndarray:
    noise = (np.random.default_rng(0).standard_normal(samples) * EMBEDDING_SILENCE_RMS
             ).astype(np.float32)
    noise.setflags(write=False)
    return noise


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits (the network graph outputs logits)."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def pretrained_path(name: str = SHIPPED) -> Path:
    """A model shipped inside the package (trained on speech_commands_lite): ``"shipped"``
    the TC-ResNet8 (the default), ``"shipped-embedding"`` the speech-embedding model."""
    if name not in (SHIPPED, SHIPPED_EMBEDDING):
        raise KwspotError(f"no shipped model named {name!r}: {SHIPPED} or {SHIPPED_EMBEDDING}")
    stem = PRETRAINED_NAME if name == SHIPPED else PRETRAINED_EMBEDDING_NAME
    return Path(str(resources.files("kwspot") / "pretrained" / f"{stem}.onnx"))


SHIPPED_NAMES = (SHIPPED, SHIPPED_EMBEDDING)


def resolve_export(path: str | Path) -> Path:
    """``"shipped-embedding"`` -> its packaged export; anything else as a path. (``"shipped"``
    is left alone: where checkpoints are taken it names the TC-ResNet8's checkpoint.)"""
    return pretrained_path(SHIPPED_EMBEDDING) if str(path) == SHIPPED_EMBEDDING else Path(path)


def resolve_shipped(path: str | Path | None) -> Path:
    """A model path, with None / ``"shipped"`` / ``"shipped-embedding"`` resolved to the
    packaged exports."""
    if path is None or str(path) in ("", SHIPPED):
        return pretrained_path()
    return resolve_export(path)


def onnx_session(path: Path, threads: int) -> ort.InferenceSession:
    """A CPU ONNX Runtime session on ``threads`` threads; a bad file is a one-line error."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own opaque types
        raise KwspotError(f"{path}: cannot load ONNX model ({exc})") from None


def read_card(card_file: Path) -> dict[str, Any]:
    """The model card, checked: a wrong card would silently feed the model the wrong audio."""
    try:
        return parse_card(card_file.read_text(), card_file)
    except (OSError, UnicodeDecodeError) as exc:
        raise KwspotError(f"{card_file}: model card is not readable JSON ({exc})") from None


def embedded_card(text: str | None, path: Path) -> dict[str, Any]:
    """The copy of the card the export stores in the model's metadata (``kwspot_card``;
    ``text`` is None when there is none), for any format."""
    if text is None:
        raise KwspotError(f"{path}: model card {card_path(path).name} not found "
                          "beside it, and none is embedded in the model")
    return parse_card(text, path)


def parse_card(text: str, card_file: Path) -> dict[str, Any]:
    try:
        card = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KwspotError(f"{card_file}: model card is not readable JSON ({exc})") from None
    if not isinstance(card, dict):
        raise KwspotError(f"{card_file}: model card must be a JSON object")
    labels = card.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise KwspotError(f"{card_file}: model card needs 'labels', a list of names")
    for key in ("sample_rate", "window_samples"):
        value = card.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or \
                not math.isfinite(value) or value <= 0 or value != int(value):
            raise KwspotError(f"{card_file}: model card needs a positive integer {key!r}, "
                              f"got {value!r}")
    thresholds = card.get("thresholds") or {}
    if not isinstance(thresholds, dict) or not all(
            k in labels and isinstance(v, int | float) and 0 < v <= 1
            for k, v in thresholds.items()):
        raise KwspotError(f"{card_file}: 'thresholds' must map labels to numbers in (0, 1]")
    return card


class ExportedModel:
    """What every exported format shares: the card (the side file wins, as calibration
    updates it; else the copy inside the model), what it says, and where the network graph
    is. Subclasses add their runtime's session and the checks of its shapes."""

    path: Path
    card: dict[str, Any]
    network: Any
    embedding_session: ort.InferenceSession | None = None
    stream: StreamGraph | None = None  # the incremental graph of a causal export (ONNX only)

    def _load_card(self, path: Path, embedded: Callable[[], str | None]) -> None:
        card_file = card_path(path)
        self.path = path
        self.card = read_card(card_file) if card_file.is_file() else \
            embedded_card(embedded(), path)
        self.labels: list[str] = list(self.card["labels"])
        self.sample_rate: int = int(self.card["sample_rate"])
        self.window_samples: int = int(self.card["window_samples"])
        self.thresholds: dict[str, float] = {
            k: float(v) for k, v in (self.card.get("thresholds") or {}).items()}
        self.features = FeatureConfig(**self.card["features"]) if "features" in self.card \
            else None
        # wake-word exports: speech embeddings (from their own graph) instead of MFCCs
        self.embedding = EmbeddingFeatures.from_card(
            self.card["embedding"], self.sample_rate, card_file) \
            if isinstance(self.card.get("embedding"), dict) else None

    def _check_output_count(self, count: object) -> None:
        if isinstance(count, int) and count != len(self.labels):
            raise KwspotError(f"{card_path(self.path)}: the card has {len(self.labels)} labels "
                              f"but the model has {count} outputs")

    def _network_path(self) -> Path | None:
        """The export's network graph (features in), None when it has none."""
        network = (self.card.get("network") or {}).get("file")
        if not network or (self.features is None and self.embedding is None):
            return None
        return self._beside(network, "network graph")

    def _beside(self, name: str, what: str) -> Path:
        path = self.path.parent / name
        if not path.is_file():
            raise KwspotError(f"{self.path}: its {what} {name} is missing")
        return path

    def _embedding_session(self, threads: int) -> ort.InferenceSession | None:
        """The speech-embedding graph of a wake-word export (ONNX, whatever the format)."""
        if self.embedding is None:
            return None
        return onnx_session(self._beside(str(self.card["embedding"].get("file")),
                                         "speech-embedding graph"), threads)

    def frontend(self) -> NumpyFrontend | EmbeddingFrontend | None:
        """A fresh front end for one stream, when the export has a network graph."""
        if self.network is None:
            return None
        if self.embedding is not None:
            return EmbeddingFrontend(self.embedding, self.embedding_session)
        return NumpyFrontend(self.features)


class OnnxKeywordModel(ExportedModel):
    """(N, window_samples) float32 audio -> (N, classes) posteriors; and, when the export has a
    network graph, (N, C, T) features -> (N, classes) posteriors."""

    def __init__(self, path: str | Path | None = None, threads: int = 1) -> None:
        path = resolve_shipped(path)
        if path.is_dir():
            candidates = sorted(p for p in path.glob("*.onnx")
                                if not p.name.endswith((".net.onnx", ".embed.onnx",
                                                        ".stream.onnx")))
            if len(candidates) != 1:
                raise KwspotError(
                    f"{path}: expected exactly one .onnx file, found {len(candidates)}")
            path = candidates[0]
        if path.suffix == ".pt":
            raise KwspotError(f"{path}: a training checkpoint; export it first with "
                              f"`kwspot export {path}`")
        if not path.is_file():
            raise KwspotError(f"{path}: model file not found")
        self.session = onnx_session(path, threads)
        self._load_card(path, lambda: self.session.get_modelmeta().custom_metadata_map.get(
            CARD_KEY))
        self.input_name = self.session.get_inputs()[0].name
        inputs = self.session.get_inputs()[0].shape
        if len(inputs) == 2 and isinstance(inputs[1], int) and inputs[1] != self.window_samples:
            raise KwspotError(f"{card_path(path)}: window_samples is {self.window_samples} but "
                              f"the model takes {inputs[1]} samples")
        outputs = self.session.get_outputs()[0].shape
        self._check_output_count(outputs[1] if len(outputs) == 2 else None)
        network_path = self._network_path()
        self.embedding_session = self._embedding_session(threads)
        self.network: ort.InferenceSession | None = None
        if network_path is not None:
            self.network = onnx_session(network_path, threads)
            self.network_input = self.network.get_inputs()[0].name
            self.stream = self._stream_graph(threads)

    def _stream_graph(self, threads: int) -> StreamGraph | None:
        """The incremental graph when the card names one (a causal model's export)."""
        entry = self.card.get("stream")
        if not isinstance(entry, dict) or self.features is None:
            return None
        path = self._beside(str(entry.get("file")), "stream graph")
        return StreamGraph(onnx_session(path, threads), entry, self.features, path)

    def posteriors(self, windows: np.ndarray) -> np.ndarray:
        windows = np.ascontiguousarray(windows, dtype=np.float32)
        if windows.ndim == 1:
            windows = windows[None]
        return self.session.run(None, {self.input_name: windows})[0]

    def network_posteriors(self, features: np.ndarray) -> np.ndarray:
        """(N, C, T) features -> (N, classes) posteriors (softmax of the network's logits)."""
        if self.network is None:
            raise KwspotError(f"{self.path}: this export has no network graph")
        return softmax(self.network.run(None, {self.network_input: np.ascontiguousarray(
            features, dtype=np.float32)})[0])


def load_keyword_model(path: str | Path | None = None,
                       threads: int = 1) -> OnnxKeywordModel | TfliteKeywordModel:
    """The runtime model for an exported file, by its suffix: ``.tflite`` runs in
    ai-edge-litert, anything else (``.onnx``, a folder, None or ``"shipped"`` for the shipped
    model, ``"shipped-embedding"`` for the shipped speech-embedding model) in ONNX Runtime."""
    path = resolve_shipped(path)
    if path.suffix.lower() == ".tflite":
        from kwspot.runtime.tflite_model import TfliteKeywordModel

        return TfliteKeywordModel(path, threads)
    return OnnxKeywordModel(path, threads)
