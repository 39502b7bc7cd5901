"""Sound-alikes of a wake phrase, made from its phonemes: the hard negatives a wake-word model
must reject ("carbon" for "marvin", the phrase cut to its first half). eSpeak NG gives the
phonemes; edits of them give words that share sounds with the phrase but are not it, which
eSpeak then says from the edited phonemes.

Why at least two edits: one swap inside a confusable group ("m'A@vIN", "m'A:vIn") is how real
people say the phrase anyway. In exploratory runs (session notes of 2026-11-22, not a
committed benchmark), such near-copies trained as negatives taught the model eSpeak's exact
rendering and it stopped firing on real recordings of the phrase. So every sound-alike here is
at least two edits away, and a cut phrase keeps at most half of it.
"""

from __future__ import annotations

import numpy as np

from kwspot.datasets.espeak import phonemes

# Confusable groups of eSpeak's English phoneme mnemonics; a swap stays inside a group.
_GROUPS = (
    ("p", "b", "t", "d", "k", "g"),
    ("f", "v", "T", "D", "s", "z", "S", "Z", "h"),
    ("tS", "dZ", "S", "Z"),
    ("m", "n", "N"),
    ("l", "r", "w", "j"),
    ("a", "A:", "A@", "E", "I", "i:", "i", "@", "3:", "V", "0", "O:", "U", "u:", "aI", "aU",
     "eI", "OI", "oU", "e@", "I@", "@L", "a#", "I2", "O@"),
)
_STRESS = "',"


def _split_stress(item: str) -> tuple[str, str]:
    stress = "".join(ch for ch in item if ch in _STRESS)
    return stress, "".join(ch for ch in item if ch not in _STRESS)


def _swap(item: str, rng: np.random.Generator) -> str | None:
    stress, core = _split_stress(item)
    groups = [g for g in _GROUPS if core in g]
    if not groups:
        return None
    group = groups[int(rng.integers(len(groups)))]
    choices = [p for p in group if p != core]
    return stress + choices[int(rng.integers(len(choices)))]


def _other(item: str, rng: np.random.Generator) -> str:
    """A phoneme of another kind (a vowel for a consonant's place, a stop for a nasal...)."""
    stress, core = _split_stress(item)
    groups = [g for g in _GROUPS if core not in g]
    group = groups[int(rng.integers(len(groups)))]
    return stress + group[int(rng.integers(len(group)))]


def edits(phrase_phonemes: str, rng: np.random.Generator) -> str:
    """A random sound-alike of a ``|``/space separated phoneme string (see
    ``datasets.espeak.phonemes``): the phrase cut to at most half, or two to three phonemes changed
    (swapped within or across kinds, or dropped)."""
    words = [w.split("|") for w in phrase_phonemes.split()]
    flat = [(i, j) for i, w in enumerate(words) for j in range(len(w))]
    if rng.random() < 0.2 and len(flat) >= 4:  # only its first or last half
        keep = int(rng.integers(2, len(flat) // 2 + 1))
        kept = set(flat[:keep] if rng.random() < 0.6 else flat[len(flat) - keep :])
        words = [[p for j, p in enumerate(w) if (i, j) in kept] for i, w in enumerate(words)]
    else:
        changes = min(len(flat), int(rng.integers(2, 4)))
        for index in rng.choice(len(flat), size=changes, replace=False):
            i, j = flat[int(index)]
            kind = rng.random()
            if kind < 0.15 and len(flat) > 3:
                words[i][j] = ""
            elif kind < 0.55:
                words[i][j] = _swap(words[i][j], rng) or _other(words[i][j], rng)
            else:
                words[i][j] = _other(words[i][j], rng)
    return " ".join("".join(w) for w in words if any(w))


def sound_alikes(phrase: str, count: int, seed: int, voice: str = "en-us") -> list[str]:
    """Up to ``count`` distinct sound-alikes as eSpeak phoneme input (``[[...]]``), never the
    phrase's own phonemes."""
    own = phonemes(phrase, voice)
    original = " ".join("".join(w.split("|")) for w in own.split())
    rng = np.random.default_rng([seed, 7])
    found: dict[str, None] = {}
    for _ in range(count * 20):
        edited = edits(own, rng)
        if edited and edited != original:
            found[f"[[{edited}]]"] = None
        if len(found) >= count:
            break
    return list(found)
