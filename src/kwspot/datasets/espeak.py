"""eSpeak NG, driven through ``ctypes``: voices, phonemes and speech for every synthesizer.

eSpeak NG is robotic, but it is offline, fast, and has many accents and voice variants, so
thousands of varied utterances of any text cost seconds; its phonemes also feed the neural
voices (datasets.piper, datasets.kokoro) and the sound-alikes (wakeword.soundalikes).

The library comes from the ``espeakng-loader`` wheel (library and data, no system install).
eSpeak keeps hidden state between utterances (a pitch-flutter phase, gain control, a cycle
counter and libc ``rand()``), so the same text twice in one process gives different samples.
Reproducible datasets need identical bytes, so every utterance runs on a freshly loaded
private copy of the library, with its random generators seeded: about 1 ms of overhead per
utterance, and output that depends only on the text and the style.
"""

from __future__ import annotations

import _ctypes
import atexit
import ctypes
import ctypes.util
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from kwspot.errors import KwspotError

__all__ = [
    "DEFAULT_WPM",
    "MAX_WPM",
    "SAMPLE_RATE",
    "SynthesisError",
    "VoiceStyle",
    "available_voices",
    "ipa_phonemes",
    "phonemes",
    "random_style",
    "speak",
    "speech_span",
    "speed_range",
    "spoken_seconds",
    "syllables",
]

SAMPLE_RATE = 16000

# Voice variants (espeak-ng-data/voices/!v) that still sound like a person speaking English.
# The rest of the shipped variants are effects (robots, demons, heavy echo, "croak"), distort
# ("antonio" saturates), or have a space in their file name, which "+variant" cannot name.
_MALE_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8",
    "Alex", "Andy", "Denis", "Gene", "Jacky", "Lee", "Mario", "Michael", "Mike",
    "adam", "benjamin", "boris", "david", "ed", "edward", "grandpa", "gustave",
    "ian", "john", "klatt", "klatt2", "klatt3", "marcelo", "max", "michel", "norbert", "paul",
    "pedro", "quincy", "rob", "robert", "travis", "victor",
)  # fmt: skip
_FEMALE_VARIANTS = (
    "f1", "f2", "f3", "f4", "f5",
    "Alicia", "Andrea", "Annie", "anika", "aunty", "belinda", "grandma", "linda", "shelby",
    "steph", "steph2", "zac",
)  # fmt: skip
_WHISPER_VARIANTS = ("whisper", "whisperf")
_CURATED_VARIANTS = _MALE_VARIANTS + _FEMALE_VARIANTS + _WHISPER_VARIANTS

# Ranges random_style draws from: wide enough for variety, narrow enough to stay intelligible.
_SPEED_RANGE = (120, 240)  # words per minute; eSpeak's default is 175
_PITCH_RANGE = (20, 80)
_PITCH_RANGE_RANGE = (15, 90)
MAX_WPM = 450  # above this eSpeak switches to time-stretching, which garbles short words

# eSpeak NG C API constants (speak_lib.h).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # otherwise a missing data file makes eSpeak call exit()
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PHONEME_SEPARATOR = ord("|")
_PHONEMES_IPA = 0x02  # espeak_TextToPhonemes: IPA characters, no separator
_PHONEME_INPUT = 0x100  # espeakPHONEMES: "[[...]]" in the text is phoneme mnemonics
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3
_PARAM_RANGE = 4
_BUFFER_MS = 200
_VOLUME = 40  # of eSpeak's 0-200: its default 100 saturates int16 on loud variants (Jacky, ed)
_RAND_SEED = 1  # eSpeak's breath noise is random: a fixed seed keeps every utterance repeatable

# Trimming: frames quieter than this (relative to the loudest frame) at either end are silence.
_TRIM_FRAME = 160  # 10 ms at 16 kHz
_TRIM_DB = -40.0
_TRIM_PAD = 80  # keep 5 ms around the speech so onsets are not clipped


class SynthesisError(KwspotError, RuntimeError):
    """eSpeak NG could not be loaded or could not speak (missing library/data, unknown voice)."""


@dataclass(frozen=True)
class VoiceStyle:
    """One draw of the voice variation, so a clip can be regenerated or logged."""

    voice: str  # eSpeak voice, optionally with "+variant": "en-us", "en-gb-scotland+f3"
    speed_wpm: int  # words per minute
    pitch: int  # 0-99, eSpeak's base pitch
    pitch_range: int  # 0-99, how much the pitch moves (0 = monotone)

    def __post_init__(self) -> None:
        if not self.voice or not isinstance(self.voice, str):
            raise ValueError("VoiceStyle.voice must be a non-empty string")
        if not 80 <= self.speed_wpm <= MAX_WPM:
            raise ValueError(f"speed_wpm must be in 80..{MAX_WPM}, got {self.speed_wpm}")
        if not 0 <= self.pitch <= 99:
            raise ValueError(f"pitch must be in 0..99, got {self.pitch}")
        if not 0 <= self.pitch_range <= 99:
            raise ValueError(f"pitch_range must be in 0..99, got {self.pitch_range}")


class _EspeakVoice(ctypes.Structure):
    _fields_ = (
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),  # (priority byte, name, NUL)*, then NUL
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    )


class _EspeakEvent(ctypes.Structure):
    _fields_ = (
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_void_p),
    )


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_EspeakEvent)
)


def _dlclose(handle: int) -> None:
    close = getattr(_ctypes, "dlclose", None) or getattr(_ctypes, "FreeLibrary", None)
    if close is not None:
        close(handle)


class _Engine:
    """The process-wide eSpeak setup: where the library and data are, its rate and voices."""

    def __init__(self) -> None:
        source, data_path = _locate_espeak()
        # A private copy, so dlopen gives us our own instance that dlclose really unloads
        # (another module in the process, e.g. a phonemizer, may have the original loaded).
        self._tmpdir = tempfile.mkdtemp(prefix="kwspot-espeak-")
        atexit.register(shutil.rmtree, self._tmpdir, True)
        self.lib_path = str(Path(self._tmpdir) / Path(source).name)
        try:
            shutil.copyfile(source, self.lib_path)
        except OSError:
            self.lib_path = source
        self.data_path = data_path
        self._chunks: list[np.ndarray] = []
        self._rate = 0  # set by every _Session from espeak_Initialize
        self._callback = _SynthCallback(self._collect)
        self._libc = _load_libc()
        with self._session() as lib:
            self.native_rate = self._rate
            self.base_voices = _list_english_voices(lib)
            self.variants = _list_variants(lib)

    def _collect(self, wav: Any, n: int, _event: Any) -> int:
        if wav and n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0  # 0 = keep synthesising

    def _session(self) -> _Session:
        return _Session(self)

    def synth(self, text: str, style: VoiceStyle) -> np.ndarray:
        """Speak ``text`` on a fresh library instance; int16 samples at the native rate."""
        data = text.encode("utf-8")
        with self._session() as lib:
            if lib.espeak_SetVoiceByName(style.voice.encode("utf-8")) != 0:
                raise SynthesisError(f"eSpeak has no voice {style.voice!r}")
            lib.espeak_SetParameter(_PARAM_RATE, style.speed_wpm, 0)
            lib.espeak_SetParameter(_PARAM_VOLUME, _VOLUME, 0)
            lib.espeak_SetParameter(_PARAM_PITCH, style.pitch, 0)
            lib.espeak_SetParameter(_PARAM_RANGE, style.pitch_range, 0)
            if hasattr(lib, "espeak_ng_SetRandSeed"):
                lib.espeak_ng_SetRandSeed(_RAND_SEED)
            if self._libc is not None:
                self._libc.srand(_RAND_SEED)
            self._chunks = []
            flags = _CHARS_UTF8 | (_PHONEME_INPUT if "[[" in text else 0)
            err = lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, flags, None, None)
            if err != 0:
                raise SynthesisError(f"espeak_Synth failed (error {err}) for {text!r}")
            lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        if not chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(chunks)


    def phonemes(self, text: str, voice: str, mode: int = _PHONEME_SEPARATOR << 8) -> str:
        """eSpeak's phoneme mnemonics for ``text`` (the notation ``[[...]]`` input takes),
        one phoneme per ``|``-separated item, words split by spaces; ``mode``
        ``_PHONEMES_IPA``: IPA instead."""
        data = ctypes.c_char_p(text.encode("utf-8"))
        pointer = ctypes.c_void_p(ctypes.cast(data, ctypes.c_void_p).value)
        out = []
        with self._session() as lib:
            if lib.espeak_SetVoiceByName(voice.encode("utf-8")) != 0:
                raise SynthesisError(f"eSpeak has no voice {voice!r}")
            while pointer.value:
                piece = lib.espeak_TextToPhonemes(ctypes.byref(pointer), _CHARS_UTF8, mode)
                if piece:
                    out.append(piece.decode("utf-8", "replace").strip())
        return " ".join(x for x in out if x)


class _Session:
    """Load, initialise, use, terminate and unload one library instance (call under _LOCK)."""

    def __init__(self, engine: _Engine) -> None:
        self.engine = engine
        self.lib: ctypes.CDLL | None = None

    def __enter__(self) -> ctypes.CDLL:
        engine = self.engine
        try:
            lib = ctypes.CDLL(engine.lib_path)
        except OSError as exc:
            raise SynthesisError(f"cannot load eSpeak NG from {engine.lib_path}: {exc}") from exc
        self.lib = lib
        _declare(lib)
        data = engine.data_path.encode() if engine.data_path else None
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, data, _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            self.lib = None  # nothing to terminate; just unload
            _dlclose(lib._handle)
            raise SynthesisError(f"espeak_Initialize failed (data path {engine.data_path})")
        engine._rate = rate
        lib.espeak_SetSynthCallback(engine._callback)
        return lib

    def __exit__(self, *_exc: object) -> None:
        lib, self.lib = self.lib, None
        if lib is None:
            return
        lib.espeak_Terminate()
        handle = lib._handle
        del lib
        _dlclose(handle)


def _declare(lib: ctypes.CDLL) -> None:
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
        ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
    ]  # fmt: skip
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Synchronize.argtypes = []
    lib.espeak_Synchronize.restype = ctypes.c_int
    lib.espeak_Terminate.argtypes = []
    lib.espeak_Terminate.restype = ctypes.c_int
    lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int,
                                          ctypes.c_int]
    lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
    lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_EspeakVoice))
    if hasattr(lib, "espeak_ng_SetRandSeed"):
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = ctypes.c_int


def _locate_espeak() -> tuple[str, str | None]:
    """Library and data from the espeakng-loader wheel, else a system libespeak-ng."""
    try:
        import espeakng_loader
    except ImportError:
        found = ctypes.util.find_library("espeak-ng")
        if found is None:
            raise SynthesisError(
                "eSpeak NG not found: install it with `pip install espeakng-loader`"
            ) from None
        return found, None
    lib_path = espeakng_loader.get_library_path()
    if not Path(lib_path).exists():
        raise SynthesisError(f"espeakng-loader is installed but {lib_path} is missing")
    try:
        data_path = espeakng_loader.get_data_path()
    except RuntimeError as exc:
        raise SynthesisError(f"espeakng-loader data is missing: {exc}") from exc
    return lib_path, data_path


def _load_libc() -> ctypes.CDLL | None:
    """libc, to seed the rand() that eSpeak's breath noise uses."""
    try:
        libc = ctypes.CDLL(None)
        libc.srand.argtypes = [ctypes.c_uint]
        libc.srand.restype = None
    except (OSError, AttributeError):
        return None
    return libc


def _voice_list(lib: ctypes.CDLL, spec: _EspeakVoice | None) -> list[_EspeakVoice]:
    arr = lib.espeak_ListVoices(ctypes.byref(spec) if spec is not None else None)
    out = []
    i = 0
    while arr and arr[i]:
        out.append(arr[i].contents)
        i += 1
    return out


def _languages(voice: _EspeakVoice) -> list[str]:
    langs = []
    ptr = voice.languages
    if not ptr:
        return langs
    offset = 0
    while ctypes.string_at(ptr + offset, 1) != b"\0":
        name = ctypes.string_at(ptr + offset + 1)  # skip the priority byte
        langs.append(name.decode("ascii", "replace"))
        offset += len(name) + 2
    return langs


def _list_english_voices(lib: ctypes.CDLL) -> list[str]:
    names = []
    for voice in _voice_list(lib, None):
        ident = (voice.identifier or b"").decode("ascii", "replace")
        if ident.startswith("mb/"):
            continue  # MBROLA voices need separate databases
        langs = _languages(voice)
        # en-shaw is English written in the Shavian alphabet: Latin text gives nothing new.
        if any(lang == "en" or (lang.startswith("en-") and lang != "en-shaw") for lang in langs):
            names.append(ident.rsplit("/", 1)[-1].lower())
    return sorted(set(names))


def _list_variants(lib: ctypes.CDLL) -> set[str]:
    spec = _EspeakVoice()
    keep = ctypes.c_char_p(b"variant")
    spec.languages = ctypes.cast(keep, ctypes.c_void_p)
    idents = [(v.identifier or b"").decode("utf-8", "replace") for v in _voice_list(lib, spec)]
    return {ident.split("/", 1)[-1] for ident in idents if ident.startswith("!v/")}


_LOCK = threading.Lock()
_ENGINE: _Engine | None = None


def _engine() -> _Engine:
    """The shared engine, created on first use (callers hold _LOCK)."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Engine()
    return _ENGINE


def available_voices() -> list[str]:
    """English voices and "voice+variant" names that the shipped data can really speak.

    eSpeak silently ignores an unknown variant, so the list is checked against the data files
    instead of trusting espeak_SetVoiceByName.
    """
    with _LOCK:
        engine = _engine()
        bases = list(engine.base_voices)
        variants = [v for v in _CURATED_VARIANTS if v in engine.variants]
    return bases + [f"{base}+{variant}" for base in bases for variant in variants]


def random_style(rng: np.random.Generator) -> VoiceStyle:
    """Draw an accent, a speaker variant (male/female/whisper), speed, pitch and intonation."""
    with _LOCK:
        engine = _engine()
        bases = list(engine.base_voices)
        variants = [v for v in _CURATED_VARIANTS if v in engine.variants]
    if not bases:
        raise SynthesisError("eSpeak NG data has no English voice")
    base = bases[int(rng.integers(len(bases)))]
    # Mostly the standard m/f variants, some of the rest, whispering rarely.
    group = rng.random()
    standard = [v for v in variants if len(v) == 2 and v[0] in "mf" and v[1].isdigit()]
    whisper = [v for v in variants if v in _WHISPER_VARIANTS]
    other = [v for v in variants if v not in standard and v not in whisper]
    if group < 0.1 or not variants:
        variant = ""
    elif group < 0.6 and standard:
        variant = standard[int(rng.integers(len(standard)))]
    elif group < 0.95 and other:
        variant = other[int(rng.integers(len(other)))]
    else:
        pool = whisper or variants
        variant = pool[int(rng.integers(len(pool)))]
    return VoiceStyle(
        voice=f"{base}+{variant}" if variant else base,
        speed_wpm=int(rng.integers(_SPEED_RANGE[0], _SPEED_RANGE[1] + 1)),
        pitch=int(rng.integers(_PITCH_RANGE[0], _PITCH_RANGE[1] + 1)),
        pitch_range=int(rng.integers(_PITCH_RANGE_RANGE[0], _PITCH_RANGE_RANGE[1] + 1)),
    )


def phonemes(text: str, voice: str = "en-us") -> str:
    """``text`` as eSpeak phoneme mnemonics, ``|`` between phonemes and spaces between words:
    "marvin" -> "m|'A@|v|I|n". Joined without the bars and wrapped in ``[[...]]``, ``speak``
    says it; edits of it make sound-alikes."""
    if not text or not text.strip():
        raise ValueError("text must not be empty")
    with _LOCK:
        return _engine().phonemes(text, voice)


def ipa_phonemes(text: str, voice: str = "en-us") -> str:
    """``text`` in IPA as eSpeak NG says it ("happy" -> "hˈæpi"): what Piper and Kokoro
    voices take (datasets.piper, datasets.kokoro)."""
    if not text or not text.strip():
        raise ValueError("text must not be empty")
    with _LOCK:
        return _engine().phonemes(text, voice, _PHONEMES_IPA)


_IPA_VOWELS = set("aeiouyæɐɑɒɔəɘɚɛɜɝɞɨɪʊʌʏøœɤɯɵɶʉᵻ")
_DIPHTHONGS = {"eɪ", "aɪ", "ɔɪ", "aʊ", "oʊ", "əʊ", "ɪə", "eə", "ʊə"}
_SYLLABIC = "\u0329"  # the mark under a syllabic consonant ("button": bˈʌʔn̩)


def syllables(text: str, voice: str = "en-us") -> int:
    """How many syllables eSpeak NG says in ``text``: its IPA's vowels, a diphthong counted
    once ("house" 1, "being" bˈiːɪŋ 2, "Leo" lˈiːoʊ 2), plus syllabic consonants."""
    ipa = ipa_phonemes(text, voice)
    count, i = ipa.count(_SYLLABIC), 0
    while i < len(ipa):
        if ipa[i] in _IPA_VOWELS:
            count += 1
            i += 2 if ipa[i : i + 2] in _DIPHTHONGS else 1
        else:
            i += 1
    return count


def speech_span(audio: np.ndarray, pad: int = _TRIM_PAD) -> tuple[int, int]:
    """First and last sample of speech: 10 ms frames within 40 dB of the loudest, plus
    ``pad`` samples each side. (0, 0) for silence; the whole signal if under one frame."""
    n_frames = len(audio) // _TRIM_FRAME
    if n_frames == 0:
        return 0, len(audio)
    frames = audio[: n_frames * _TRIM_FRAME].reshape(n_frames, _TRIM_FRAME)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    loud = np.nonzero(rms > rms.max() * 10 ** (_TRIM_DB / 20))[0]
    if rms.max() == 0 or len(loud) == 0:
        return 0, 0
    return (max(0, loud[0] * _TRIM_FRAME - pad),
            min(len(audio), (loud[-1] + 1) * _TRIM_FRAME + pad))


def _trim(audio: np.ndarray) -> np.ndarray:
    """Cut leading/trailing silence so callers control placement and know where speech is."""
    start, end = speech_span(audio)
    return audio[start:end]


def speak(text: str, style: VoiceStyle) -> np.ndarray:
    """Say ``text`` in ``style``: float32 mono at 16 kHz, in [-1, 1], silence trimmed.

    The same text and style always give the same samples (see the module docstring).
    """
    if not text or not text.strip():
        raise ValueError("text to speak must not be empty")
    variant = style.voice.partition("+")[2]
    with _LOCK:
        engine = _engine()
        if variant and variant not in engine.variants:
            # eSpeak would quietly fall back to the plain voice.
            raise SynthesisError(f"eSpeak has no voice variant {variant!r}")
        raw = engine.synth(text, style)
        rate = engine.native_rate
    audio = raw.astype(np.float32) / 32768.0
    if rate != SAMPLE_RATE and len(audio):
        audio = soxr.resample(audio, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    audio = _trim(np.clip(audio, -1.0, 1.0))
    if len(audio) == 0:
        raise SynthesisError(f"eSpeak produced no sound for {text!r} with {style}")
    return audio.astype(np.float32, copy=False)


DEFAULT_WPM = 175  # eSpeak's own pace


def spoken_seconds(text: str, wpm: float = DEFAULT_WPM) -> float:
    """About how long ``text`` takes at ``wpm`` words a minute: said once by the default
    voice at its own pace, scaled (eSpeak's length is close to proportional to 1 / wpm)."""
    normal = len(speak(text, VoiceStyle("en-us", DEFAULT_WPM, 50, 50))) / SAMPLE_RATE
    return normal * DEFAULT_WPM / wpm


def speed_range() -> tuple[int, int]:
    """The slowest and fastest pace (words a minute) the random styles draw."""
    return _SPEED_RANGE
