"""``kwspot wakeword "hey kwspot"``: typed text -> a calibrated, exported detector.

Stages, each written to ``<out>/work`` and skipped when its result is there (a killed run
resumes; ``--force`` starts over):

1. windows: synthesized positives and negatives, the user's negatives, augmented, embedded
   (``embeddings.npz``);
2. head: trained on the training windows, best epoch on the validation windows (``head.pt``);
3. export: ``<out>/<name>.onnx`` with card, embedding graph and network graph;
4. calibration streams from *held-out* material only (voices, sentence words and user
   speakers the head never trained on): a keyword stream and a negatives-only stream;
5. calibration: the threshold for the target false alarms per hour on those streams, written
   into the card.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kwspot.datasets.voices import SYNTHESIZERS, share, used
from kwspot.errors import KwspotError
from kwspot.features import FeatureConfig
from kwspot.fileio import atomic_write_text
from kwspot.wakeword.data import FIT, DataConfig, WindowSet, build_windows
from kwspot.wakeword.model import WINDOW_SAMPLES
from kwspot.wakeword.train import (
    HeadConfig,
    embed_windows,
    embedding_graph,
    frontend_features,
    train_head,
)

Log = Callable[[str], None]
EMBEDDING = "embedding"


def scratch_features() -> FeatureConfig:
    """kwspot's default 40-MFCC front end over the flow's whole window (1.98 s)."""
    return FeatureConfig(clip_ms=1000 * WINDOW_SAMPLES / FeatureConfig().sample_rate)


@dataclass(frozen=True)
class WakewordConfig:
    phrase: str
    out: str
    negatives: tuple[str, ...] = ()
    noise: tuple[str, ...] = ()
    target_fa_per_hour: float = 1.0
    calibration_minutes: float = 60.0
    data: DataConfig | None = None
    head: HeadConfig = field(default_factory=HeadConfig)
    threads: int = 0
    # "embedding": a small head on the frozen pretrained speech embedding; or a kwspot model
    # (e.g. "tc-resnet8") trained from scratch on kwspot's own MFCC front end, same windows
    backbone: str = EMBEDDING
    # heads averaged (seeds head.seed, head.seed + 1, ...): their mean posterior is the score;
    # the embedding is computed once, so each head adds little CPU (embedding backbone only)
    heads: int = 1
    # folders of real recordings of the phrase (optional): positives beside the synthetic
    # ones, held out by speaker for validation and calibration (data.recording_splits)
    recordings: tuple[str, ...] = ()


# English function words: a phrase made only of these is said in every conversation
_FUNCTION_WORDS_TEXT = """
a an the this that these those some any no not nor every each either neither both all
i me my mine myself you your yours yourself he him his himself she her hers herself it its
itself we us our ours ourselves they them their theirs themselves one ones
am is are was were be been being do does did done doing have has had having will would shall
should can could may might must ought let lets let's
i'm you're he's she's it's we're they're i've you've we've they've i'd you'd he'd she'd we'd
they'd i'll you'll he'll she'll we'll they'll isn't aren't wasn't weren't don't doesn't
didn't haven't hasn't hadn't won't wouldn't can't cannot couldn't shouldn't mustn't
and or but so if then than because as while when where why how what which who whom whose
whether though although until unless since till
of to in on at by for with from about into onto upon over under up down out off through
across along around before after above below between among against during without within
toward towards near via per like
yes yeah ok okay oh ah uh um hmm hey hi hello well just very too also only even still yet
here there now again ever never always often more most much many few less least such same
other another own
"""
FUNCTION_WORDS = frozenset(_FUNCTION_WORDS_TEXT.split())


# recall at <= 1 false alarm an hour (oracle thresholds) on real Speech Commands recordings,
# default voices (docs/results.md)
ONE_SYLLABLE_MEASURED = "bed 46.9 %, cat 66.0 %, house 82.8 % at <= 1 FA/h"
TWO_SYLLABLES_MEASURED = "happy 86.4 %, marvin 75.9 %, sheila 81.2 %"


def check_phrase(phrase: str) -> str:
    """The phrase, normalised; one clear error for what cannot be a wake phrase."""
    from kwspot.datasets.espeak import phonemes, speed_range, spoken_seconds

    text = " ".join(str(phrase).split())
    if not text:
        raise KwspotError("the wake phrase is empty")
    if "[[" in text or "]]" in text:
        raise KwspotError(f"{phrase!r}: eSpeak phoneme input ([[...]]) is not a phrase: type "
                          "the words as they are spelled")
    if not re.search(r"[A-Za-z0-9]", text):
        raise KwspotError(f"{phrase!r}: a wake phrase needs letters eSpeak can pronounce")
    if all(w.lower().strip(",.!?;:") in FUNCTION_WORDS for w in text.split()):
        raise KwspotError(f"{phrase!r}: only common function words; every conversation says "
                          "them, so it would fire all the time. Pick a distinctive phrase")
    sounds = [p for word in phonemes(text).split() for p in word.split("|") if p.strip("',")]
    if len(sounds) < 3:
        raise KwspotError(f"{phrase!r}: too short to spot reliably (phonemes: "
                          f"{' '.join(sounds)}); a phrase of two or three syllables works best")
    window = WINDOW_SAMPLES / 16000
    if spoken_seconds(text, speed_range()[1]) > FIT * window:  # too long even said fastest
        raise KwspotError(f"{phrase!r}: too long for the detector's {window:.2f} s window "
                          f"({spoken_seconds(text):.2f} s at an average pace); use a shorter "
                          "phrase")
    return text


def check_backbone(backbone: str) -> None:
    from kwspot.models import MODELS

    if backbone != EMBEDDING and backbone not in MODELS:
        raise KwspotError(f"unknown backbone {backbone!r}; choose {EMBEDDING} or a kwspot "
                          f"model: {', '.join(sorted(MODELS))}")


def slug(phrase: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", phrase.lower()).strip("-") or "wakeword"


def _fingerprints(cfg: WakewordConfig, data: DataConfig) -> dict[str, str]:
    """What the stored stages depend on, in three parts: ``data`` (the windows and their
    features: minutes of synthesis and embedding), ``head`` (the trained heads, seconds to
    minutes) and ``calibration`` (the held-out streams: their length and how they are cut).
    A work folder whose data part or kwspot version differs is started over; one whose
    head or calibration part alone differs keeps its windows and redoes only that stage."""
    from kwspot import __version__

    def digest(fields: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]

    backbone = {} if cfg.backbone == EMBEDDING else {"backbone": cfg.backbone}
    # absent when unused: work folders made before the option stay valid
    recorded = {"recordings": [str(Path(p).resolve()) for p in cfg.recordings]} \
        if cfg.recordings else {}
    # the installed voices of each synthesizer asked for decide the windows too
    voices = dict(synth.fingerprint() for synth in SYNTHESIZERS if share(data, synth) > 0)
    return {"data": digest({"version": __version__, "data": asdict(data), **backbone, **voices,
                            **recorded,
                            "negatives": [str(Path(p).resolve()) for p in cfg.negatives],
                            "noise": [str(Path(p).resolve()) for p in cfg.noise]}),
            "head": digest({"head": asdict(cfg.head), **backbone}),
            # one window per held-out recording (_calibration_streams)
            "calibration": digest({"minutes": cfg.calibration_minutes, "recording_windows": 1})}


def wakeword(cfg: WakewordConfig, log: Log = print, force: bool = False) -> dict[str, Any]:
    """Run (or resume) every stage; returns the summary also written to ``summary.json``."""
    from kwspot.classifier import KeywordClassifier
    from kwspot.data import UNKNOWN
    from kwspot.evaluate.calibrate import calibrate, write_thresholds
    from kwspot.export.onnx import export_onnx
    from kwspot.fileio import write_card
    from kwspot.wakeword.export import export_wakeword
    from kwspot.wakeword.model import AveragedHeads, TemporalHead, WakewordClassifier

    phrase = check_phrase(cfg.phrase)
    for warning in phrase_warnings(phrase):
        log(f"kwspot: warning: {warning}")
    check_backbone(cfg.backbone)
    if not 1 <= cfg.heads <= 16:
        raise KwspotError("--heads must be between 1 and 16")
    if cfg.heads > 1 and cfg.backbone != EMBEDDING:
        raise KwspotError(f"--heads averages heads on the speech embedding; the "
                          f"{cfg.backbone} backbone trains one network")
    if not (cfg.target_fa_per_hour > 0 and math.isfinite(cfg.target_fa_per_hour)):
        raise KwspotError("--target-fa-per-hour must be a finite number > 0")
    if not (0 < cfg.calibration_minutes <= 24 * 60 and math.isfinite(cfg.calibration_minutes)):
        raise KwspotError("--calibration-minutes must be a number in (0, 1440]")
    data = cfg.data or DataConfig(phrase)
    data = DataConfig(**{**asdict(data), "phrase": phrase})
    out = Path(cfg.out)
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    stamp = work / "config.json"
    fingerprints = _fingerprints(cfg, data)
    stored = json.loads(stamp.read_text()).get("fingerprints", {}) if stamp.is_file() else {}
    if force or stored.get("data") != fingerprints["data"]:
        for old in work.iterdir():
            if old.is_file():
                old.unlink()
        for old in (work / "calibration").glob("*"):
            old.unlink()
    else:
        if stored.get("head") != fingerprints["head"]:  # new head settings: windows reused
            for old in [*work.glob("head.pt"), *work.glob("heads*.pt")]:
                old.unlink()
        if stored.get("calibration") != fingerprints["calibration"]:  # streams only
            for old in (work / "calibration").glob("*"):
                old.unlink()
    atomic_write_text(stamp, json.dumps({"fingerprints": fingerprints, "phrase": phrase,
                                         "data": asdict(data)}, indent=1) + "\n")
    start = time.perf_counter()
    scratch = cfg.backbone != EMBEDDING

    for synth in SYNTHESIZERS:
        if share(data, synth) > 0 and not synth.voice_names():
            log(f"kwspot: note: {synth.missing}")
    if not cfg.negatives:
        log("kwspot: warning: no --negatives: validation and calibration hold synthetic "
            "speech only, so the false-alarm rate is an estimate on eSpeak voices; give "
            "folders of real speech without the phrase")
    features_file = work / "embeddings.npz"
    if not features_file.is_file():
        log(f"[1/5] synthesizing and augmenting windows for {phrase!r}")
        windows = build_windows(data, cfg.negatives, cfg.noise,
                                lambda kind, d, t: log(f"      {kind}: {d}/{t}"),
                                recordings=cfg.recordings)
        if scratch:
            log(f"      MFCCs of {len(windows.audio)} windows")
            features = frontend_features(windows.audio, scratch_features(), cfg.threads)
        else:
            log(f"      embedding {len(windows.audio)} windows")
            graph = embedding_graph(work / "embed-windows.onnx")
            features = embed_windows(windows.audio, graph, cfg.threads,
                                     lambda d, t: log(f"      embedded {d}/{t}"))
        _save_features(features_file, features, windows)
    stored = np.load(features_file)
    features, labels, validation = stored["features"], stored["labels"], stored["validation"]
    kinds = [str(k) for k in stored["kinds"]]

    def scratch_model() -> KeywordClassifier:
        return KeywordClassifier(cfg.backbone, [UNKNOWN, phrase], scratch_features(),
                                 cfg.head.dropout)

    # one file per head count (not in the fingerprint): another --heads reuses the windows
    head_file = work / ("head.pt" if cfg.heads == 1 else f"heads{cfg.heads}.pt")
    if not head_file.is_file():
        what = cfg.backbone if scratch else (
            "the head" if cfg.heads == 1 else f"{cfg.heads} heads")
        log(f"[2/5] training {what} on {int((~validation).sum())} windows")
        states, infos = [], []
        for i in range(cfg.heads):
            # built inside train_head, after it seeds: the initial weights follow the seed
            trained, info = train_head(
                features, labels, validation, replace(cfg.head, seed=cfg.head.seed + i),
                build=(lambda: scratch_model().network) if scratch else None)
            states.append(trained.state_dict())
            infos.append(info)
        torch.save({"states": states, "infos": infos}, head_file)
    saved = torch.load(head_file, weights_only=True)
    if "state" in saved:  # a work folder written before --heads existed
        saved = {"states": [saved["state"]], "infos": [saved["info"]]}
    h = cfg.head
    if scratch:
        model: torch.nn.Module = scratch_model()
        model.network.load_state_dict(saved["states"][0])
    else:
        heads = []
        for state in saved["states"]:
            heads.append(TemporalHead(h.channels, h.dropout, h.classes))
            heads[-1].load_state_dict(state)
        model = WakewordClassifier(phrase, heads[0] if cfg.heads == 1 else AveragedHeads(heads))
    model.eval()
    head_info = {**saved["infos"][0], "heads": cfg.heads,
                 "head_seeds": [cfg.head.seed + i for i in range(cfg.heads)]}
    if cfg.heads > 1:
        head_info["per_head"] = saved["infos"]

    model_path = out / f"{slug(phrase)}.onnx"
    log(f"[3/5] exporting {model_path}")
    check = _check_audio(data)
    training = {
        "phrase": phrase, "backbone": cfg.backbone,
        "windows": _counts(labels, validation, kinds),
        "head": head_info, "data": asdict(data),
        "negatives": list(cfg.negatives), "noise": list(cfg.noise),
        "voices": _voices_used(data),
        "recordings": _recordings_used(cfg.recordings, kinds, validation),
        "note": _validation_note(data, cfg.recordings)}
    documentation = wakeword_documentation(phrase, cfg, embedding=not scratch)
    if scratch:  # a plain kwspot export, its card's training entry the flow's, as below
        card = export_onnx(model, model_path, check)
        card.update(training=training, **documentation)
        write_card(card, model_path)
    else:
        export_wakeword(model, model_path, check, {"training": training, **documentation})

    streams = work / "calibration"
    if not (streams / "negatives.json").is_file():
        log(f"[4/5] building held-out calibration streams ({cfg.calibration_minutes:g} min "
            "of negatives)")
        _calibration_streams(data, cfg, streams)
    log(f"[5/5] calibrating for {cfg.target_fa_per_hour:g} false alarms per hour")
    result = calibrate(model_path, [streams / "keywords.wav", streams / "negatives.wav"],
                       cfg.target_fa_per_hour)
    write_thresholds(model_path, result)
    measured = result["calibration"]["all_keywords"]
    if measured["fa_per_hour"] > cfg.target_fa_per_hour:
        log(f"kwspot: warning: no threshold meets {cfg.target_fa_per_hour:g} false alarms per "
            f"hour on the calibration streams; the best achievable is "
            f"{measured['fa_per_hour']:.2f}/h at threshold {result['thresholds'][phrase]:.5f}")
    summary = {
        "phrase": phrase, "model": str(model_path), "backbone": cfg.backbone,
        "threshold": result["thresholds"][phrase],
        "target_met": measured["fa_per_hour"] <= cfg.target_fa_per_hour,
        "real_negatives": bool(cfg.negatives),
        "voices": _voices_used(data),
        "recordings": training["recordings"],
        "calibration": {"frr": measured["frr"], "fa_per_hour": measured["fa_per_hour"],
                        "hours": result["calibration"]["hours"],
                        "measured_on": _calibration_measured_on(training["recordings"])},
        # epoch and validation figures are the first head's when several are averaged
        "head": {**{k: head_info[k] for k in ("epoch", "val_loss", "val_recall", "val_fp_rate",
                                              "heads")},
                 **({"validation_of": "the first head only"} if cfg.heads > 1 else {})},
        "windows": _counts(labels, validation, kinds),
        "seconds": round(time.perf_counter() - start, 1),
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1) + "\n")
    return summary


def _calibration_measured_on(recordings: dict[str, Any] | None) -> str:
    if recordings and recordings["validation"]:
        return (f"held-out synthetic voices, {recordings['validation']} held-out real "
                "recordings of the phrase and held-out negatives")
    return "held-out synthetic voices and held-out negatives (not real recordings of the phrase)"


def _voices_used(data: DataConfig) -> list[str]:
    """``espeak-ng``, then ``<synthesizer>: <voices>`` for each other one used."""
    return ["espeak-ng", *(f"{synth.name}: " + ", ".join(names) for synth, names in used(data))]


def _validation_note(data: DataConfig, recordings: tuple[str, ...] = ()) -> str:
    """What the validation windows hold: held-out voices of the synthesizers that keep one
    out, never a synthesizer whose voices all train; the recordings' held-out speakers."""
    held = ["espeak-ng", *(synth.name for synth, _ in used(data) if synth.held_out())]
    all_trained = [synth.title for synth, _ in used(data) if not synth.held_out()]
    voices = ("held-out voices of " + ", ".join(held)
              + "".join(f" ({title}'s voices are all trained on)" for title in all_trained))
    if recordings:
        return ("positives are synthetic voices (voices) and the --recordings; validation "
                f"windows are {voices}, the recordings' held-out speakers (recordings) and "
                "held-out negative speakers")
    return ("positives are synthetic voices only (voices); validation windows are "
            f"{voices} and held-out negative speakers, not real recordings of the phrase")


def _recordings_used(recordings: tuple[str, ...], kinds: list[str],
                     validation: np.ndarray) -> dict[str, Any] | None:
    """How many real recordings trained and how many were held out (None without any)."""
    if not recordings:
        return None
    from kwspot.wakeword.data import RECORDING_COPIES

    mask = np.array([k == "recording" for k in kinds])
    return {"folders": list(recordings), "windows_per_recording": RECORDING_COPIES,
            "train": int((mask & ~validation).sum()) // RECORDING_COPIES,
            "validation": int((mask & validation).sum()) // RECORDING_COPIES}


def _save_features(path: Path, features: np.ndarray, windows: WindowSet) -> None:
    partial = path.with_name(path.stem + ".partial.npz")
    np.savez(partial, features=features, labels=windows.labels,
             validation=np.array([s == "validation" for s in windows.splits]),
             kinds=np.array(windows.kinds))
    partial.replace(path)


def _counts(labels: np.ndarray, validation: np.ndarray, kinds: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for split, mask in (("train", ~validation), ("validation", validation)):
        out[split] = {k: int(sum(1 for i in np.flatnonzero(mask) if kinds[i] == k))
                      for k in sorted(set(kinds))}
    return out


def wakeword_documentation(phrase: str, cfg: WakewordConfig, embedding: bool
                           ) -> dict[str, Any]:
    """The card's training data, intended use and limitations for a wake word made from
    text: what the flow knows it used, and "not recorded" for the licences of the user's
    folders. (Real-voice recall is not measured by the flow; docs/results.md has it for
    six words.)"""
    from kwspot.export.documentation import NOT_RECORDED

    others = used(cfg.data) if cfg.data is not None else []
    voices = " and ".join(["eSpeak NG", *(synth.title for synth, _ in others)]) + " voices"
    recorded = " and the user's recordings of it" if cfg.recordings else ""
    data: dict[str, Any] = {
        "name": f"'{phrase}' and sound-alike negatives spoken by {voices}{recorded}, TTS "
                "sentences, generated noise",
        "licence": "synthesized by kwspot" + (
            "; the recordings' licence: see recordings" if cfg.recordings
            else " (no third-party recordings)"),
        "voices": _voices_used(cfg.data) if cfg.data is not None else ["espeak-ng"],
        **({"recordings": {"folders": list(cfg.recordings), "licence": NOT_RECORDED}}
           if cfg.recordings else {}),
        "negatives": {"folders": list(cfg.negatives), "licence": NOT_RECORDED},
        "noise": {"folders": list(cfg.noise), "licence": NOT_RECORDED}}
    positives = (
        f"Positives are synthetic ({voices}) and the recordings in --recordings: validation "
        "and calibration used held-out synthetic voices and the recordings' held-out "
        "speakers (training.recordings says how many), a small sample of people." if
        cfg.recordings else
        f"Positives are synthetic ({voices}) only: validation and calibration used "
        "held-out synthetic voices, not people.")
    if embedding:
        from kwspot.wakeword.embedding import SOURCE

        data["pretrained"] = SOURCE
    return {
        "training_data": data,
        "intended_use": f"Always-on detection of the phrase '{phrase}' in 16 kHz speech, "
                        + ("from typed text and a few recordings of it." if cfg.recordings
                           else "as a first detector before recordings of real voices exist."),
        "limitations": [
            f"{positives} What the same flow finds of real "
            "recordings was measured on six Speech Commands words (docs/results.md, 'Your "
            "own wake word'); this phrase's was not.",
            "The threshold was calibrated on held-out streams of synthetic and held-out "
            "negative speech (their length: calibration.hours): one false alarm more or "
            "less moves the measured rate by 1/hours; rooms, music and TV are untested.",
            *phrase_warnings(phrase)]}


def phrase_warnings(phrase: str) -> list[str]:
    """What the measurements say against this phrase (a warning, not an error: it may still
    be what the user needs)."""
    from kwspot.datasets.espeak import syllables

    if syllables(phrase) >= 2:
        return []
    return [f"'{phrase}' has fewer than two syllables: one-syllable words were measured "
            f"weaker on real voices on average ({ONE_SYLLABLE_MEASURED}) than two-syllable ones "
            f"({TWO_SYLLABLES_MEASURED}; docs/results.md, 'Your own wake word'). A phrase of "
            "two or more syllables is easier to tell from everything else said."]


def _check_audio(data: DataConfig) -> np.ndarray:
    """A few positive and negative windows for the export's parity check."""
    small = DataConfig(data.phrase, positives=4, soundalikes=4, soundalike_clips=2,
                       sentences=2, user_windows=0, noise_windows=0, seed=data.seed + 1)
    return build_windows(small).audio


def _calibration_streams(data: DataConfig, cfg: WakewordConfig, out: Path) -> None:
    """Streams from validation windows only (held-out voices, sentence words and user
    speakers), with their speech cut out of the window again. Sound-alikes are left out of
    the negatives: they are confusable by construction, and a negatives stream that replays
    them sets the threshold by them rather than by ordinary speech (on "marvin" one of 60
    held-out sound-alikes was the only false alarm at the calibrated threshold)."""
    from kwspot.datasets.streams import Item, StreamConfig, speech_bounds, write_streams

    held_out = DataConfig(**{**asdict(data), "seed": data.seed + 1000, "soundalike_clips": 0})
    # one window per held-out recording: twenty augmented copies of each would weigh every
    # recording twenty times in the false-reject rate the threshold is picked by
    windows = build_windows(held_out, cfg.negatives, cfg.noise, only="validation",
                            recordings=cfg.recordings, recording_copies=1)
    positives, negatives = [], []
    for audio, label, kind, split in zip(windows.audio, windows.labels, windows.kinds,
                                         windows.splits, strict=True):
        if split != "validation":
            continue
        start, end = speech_bounds(audio)
        item = Item("keyword" if label else kind, data.phrase if label else kind,
                    audio[start:end] if end > start else audio)
        (positives if label else negatives).append(item)
    write_streams(positives, negatives, out,
                  StreamConfig(split="validation", keywords=(data.phrase,),
                               negatives_minutes=cfg.calibration_minutes, seed=data.seed),
                  {"split": "validation", "data": "kwspot wakeword held-out windows"})
