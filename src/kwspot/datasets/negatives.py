"""Speech that is not a keyword, split the same way as the keyword data.

A keyword spotter must learn (and be measured on) ordinary speech that holds no keyword. kwspot
has three offline sources of it, each dealt into train / validation / test so that nothing a
model trained or was tuned on reaches a test stream:

- the dataset's own non-keyword words (``_unknown_``), in their official split;
- FSDD spoken digits, split by speaker: george, jackson, nicolas (and lucas, where present)
  train; yweweler validation; theo test (the stable speaker hash at 20 % / 20 %, so a new
  speaker lands somewhere fixed); a digit that is itself a keyword is never a negative;
- TTS sentences of random everyday words (never a keyword or one of its homophones). Both the
  eSpeak NG voice *variants* (the timbre: 43 / 9 / 8 of them) and the *words* (247 / 81 / 78)
  are dealt into splits by the same hash, so a test sentence has a timbre and words that no
  training negative had. Accents (8 base voices) are language rules and are shared.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from kwspot.datasets.folder import split_for_speaker

FSDD_SPLIT_PCT = (20.0, 20.0)  # validation %, test % of the speaker hash
VOICE_SPLIT_PCT = (20.0, 20.0)  # of the voice variants
WORD_SPLIT_PCT = (20.0, 20.0)  # of the vocabulary
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FSDD_NAME = re.compile(r"^(?P<label>\d)_(?P<speaker>[a-z]+)_\d+\.wav$")

# Words that sound like a Speech Commands keyword: saying them is not a false alarm we can fix.
HOMOPHONES = {"no": ("know", "noh"), "right": ("write", "rite", "wright"), "go": (),
              "off": (), "on": (), "up": (), "down": (), "left": (), "stop": (), "yes": ()}

# Everyday words for TTS sentences. Sub-word look-alikes of keywords (going, only, upon,
# stopped) are kept on purpose: a product must not fire on them.
_VOCABULARY_TEXT = """
the a an and but or because when while after before if then so very really quite just i you he
she we they it this that these those my your his her our their some any every is are was were
be been being have has had do does did can could will would should might must may shall make
made take took give gave see saw look looked find found think thought tell told ask asked work
worked seem feel felt try tried leave call called keep kept let begin began show showed hear
heard play played run ran move moved live lived believe bring happen write wrote sit sat stand
stood lose lost pay paid meet met include continue set learn change lead understand watch
follow create speak read allow add spend grow open walk win offer remember love consider appear
buy wait serve die send expect build stay fall cut reach kill remain suggest raise pass sell
require report decide pull going goes gone only upon stopped stopping leftover often nobody
downtown onto alone ago nothing donkey yellow people time year day way man thing woman life
child world school state family student group country problem hand part place case week company
system program question work government number night point home water room mother area money
story fact month lot study book eye job word business issue side kind head house service friend
father power hour game line end member law car city community name president team minute idea
kid body information back parent face others level office door health person art war history
party result morning reason research girl guy moment air teacher force education garden kitchen
window table chair coffee bread apple orange lemon river mountain forest ocean island village
street bridge train plane ticket music song picture letter paper pencil phone computer camera
good new first last long great little own other old big high different small large next early
young important few public bad same able best better sure free true whole real full special
easy clear recent certain personal happy sad warm cold hot cool dark bright quiet loud soft
hard slow fast green blue red white black brown purple pink gray golden today tomorrow
yesterday always never sometimes usually again still already almost soon here there where why
how what who which whose whom one two three four five six seven eight nine ten twenty hundred
thousand
"""
VOCABULARY = _VOCABULARY_TEXT.split()


def keyword_free_vocabulary(keywords: Sequence[str], split: str | None = None) -> list[str]:
    """VOCABULARY without the keywords and their homophones; only ``split``'s words if given."""
    banned = {k.lower() for k in keywords}
    for k in keywords:
        banned.update(HOMOPHONES.get(k.lower(), ()))
    return sorted({w for w in VOCABULARY if w not in banned
                   and (split is None or split_for_speaker(w, *WORD_SPLIT_PCT) == split)})


def fsdd_split(speaker: str) -> str:
    return split_for_speaker(speaker, *FSDD_SPLIT_PCT)


def fsdd_files(folder: str | Path, split: str, keywords: Sequence[str] = ()) -> list[str]:
    """FSDD recordings (``{digit}_{speaker}_{n}.wav``) of the speakers in ``split``, without
    digits whose word is a keyword."""
    banned = {k.lower() for k in keywords}
    folder = Path(folder)
    if (folder / "recordings").is_dir():
        folder = folder / "recordings"
    out = []
    for path in sorted(folder.glob("*.wav")):
        match = FSDD_NAME.match(path.name)
        if match and fsdd_split(match.group("speaker")) == split and \
                DIGIT_WORDS[int(match.group("label"))] not in banned:
            out.append(str(path))
    return out


def voice_split(voice: str) -> str:
    """By the variant (the timbre); plain accent voices without one are training voices."""
    variant = voice.partition("+")[2]
    return split_for_speaker(variant, *VOICE_SPLIT_PCT) if variant else "train"


def voices_for_split(split: str) -> list[str]:
    from kwspot.datasets.espeak import available_voices

    return [v for v in available_voices() if voice_split(v) == split]


def tts_sentences(
    split: str, count: int, seed: int, keywords: Sequence[str], words: tuple[int, int] = (4, 14)
) -> Iterator[tuple[str, np.ndarray]]:
    """``count`` sentences of random keyword-free words, each in a voice of ``split``.

    Yields (text, float32 16 kHz audio). The same arguments give the same audio.
    """
    from kwspot.datasets.espeak import random_style, speak

    vocabulary = keyword_free_vocabulary(keywords, split)
    voices = voices_for_split(split)
    # a different stream of texts per split, so validation and test sentences differ too
    rng = np.random.default_rng([seed, ("train", "validation", "test").index(split)])
    for _ in range(count):
        n = int(rng.integers(words[0], words[1] + 1))
        text = " ".join(vocabulary[i] for i in rng.integers(len(vocabulary), size=n))
        style = replace(random_style(rng), voice=voices[int(rng.integers(len(voices)))])
        yield text, speak(text, style)


def write_negative_clips(
    out_dir: str | Path,
    split: str,
    keywords: Sequence[str],
    fsdd: str | Path | None = None,
    sentences: int = 0,
    crops_per_sentence: int = 2,
    seed: int = 0,
    clip_samples: int = 16000,
) -> dict[str, int]:
    """1-s training clips of non-keyword speech, for ``kwspot train --negatives``.

    FSDD digits are placed at a random offset in a 1 s clip; each TTS sentence gives
    ``crops_per_sentence`` random 1 s crops (a crop may cut a word: so does a live stream).
    """
    from kwspot.audio import load_audio, save_audio

    out = Path(out_dir)
    rng = np.random.default_rng([seed, 17])
    counts = {"fsdd": 0, "tts": 0}
    if fsdd is not None:
        for path in fsdd_files(fsdd, split, keywords):
            audio = load_audio(path)[:clip_samples]
            clip = np.zeros(clip_samples, np.float32)
            start = int(rng.integers(0, clip_samples - len(audio) + 1))
            clip[start : start + len(audio)] = audio
            save_audio(out / "fsdd" / Path(path).name, clip)
            counts["fsdd"] += 1
    for k, (_text, audio) in enumerate(tts_sentences(split, sentences, seed, keywords)):
        padded = np.pad(audio, (clip_samples // 4, clip_samples // 4))
        for c in range(crops_per_sentence):
            start = int(rng.integers(0, max(1, len(padded) - clip_samples)))
            clip = padded[start : start + clip_samples]
            save_audio(out / "tts" / f"sentence_{k:05d}_{c}.wav",
                       np.pad(clip, (0, clip_samples - len(clip))))
            counts["tts"] += 1
    return counts
