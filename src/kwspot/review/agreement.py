"""Agreement between annotators on the label each judgement implies: Cohen's kappa for every
pair (on the clips both judged), Fleiss' kappa over clips judged by the same number of
annotators, and the list of clips they disagree on."""

from __future__ import annotations

from collections import Counter, defaultdict
from itertools import combinations
from typing import Any

from kwspot.review.store import Judgement


def cohen_kappa(a: list[str], b: list[str]) -> float | None:
    """Cohen's kappa of two raters' labels on the same items (None when undefined)."""
    n = len(a)
    if n == 0 or n != len(b):
        return None
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in ca) / (n * n)
    if expected == 1.0:
        return 1.0 if observed == 1.0 else None
    return (observed - expected) / (1 - expected)


def fleiss_kappa(items: list[list[str]]) -> float | None:
    """Fleiss' kappa: ``items`` holds each item's labels, the same number (>= 2) per item."""
    if not items:
        return None
    n = len(items[0])
    if n < 2 or any(len(x) != n for x in items):
        return None
    categories = sorted({label for x in items for label in x})
    counts = [Counter(x) for x in items]
    p_items = [(sum(c[k] ** 2 for k in categories) - n) / (n * (n - 1)) for c in counts]
    p_bar = sum(p_items) / len(items)
    totals = Counter()
    for c in counts:
        totals.update(c)
    p_e = sum((totals[k] / (len(items) * n)) ** 2 for k in categories)
    if p_e == 1.0:
        return 1.0 if p_bar == 1.0 else None
    return (p_bar - p_e) / (1 - p_e)


def agreement_report(judgements: list[Judgement]) -> dict[str, Any]:
    """Kappas and disagreements from each annotator's latest judgement per clip."""
    by_clip: dict[str, dict[str, Judgement]] = defaultdict(dict)
    for j in judgements:
        by_clip[j.clip][j.annotator] = j
    annotators = sorted({j.annotator for j in judgements})
    pairs = []
    for x, y in combinations(annotators, 2):
        common = [c for c, js in by_clip.items() if x in js and y in js]
        kappa = cohen_kappa([by_clip[c][x].implied_label for c in common],
                            [by_clip[c][y].implied_label for c in common])
        pairs.append({"annotators": [x, y], "clips": len(common),
                      "cohen_kappa": None if kappa is None else round(kappa, 4)})
    multi = {c: js for c, js in by_clip.items() if len(js) >= 2}
    raters = Counter(len(js) for js in multi.values()).most_common(1)
    fleiss = None
    fleiss_clips = 0
    if raters:
        k = raters[0][0]
        items = [[j.implied_label for j in js.values()] for js in multi.values() if len(js) == k]
        fleiss, fleiss_clips = fleiss_kappa(items), len(items)
    disagreements = [
        {"clip": c, "judgements": [{"annotator": a, "verdict": j.verdict,
                                    "label": j.implied_label, "comment": j.comment}
                                   for a, j in sorted(js.items())]}
        for c, js in sorted(multi.items()) if len({j.implied_label for j in js.values()}) > 1]
    return {"annotators": annotators,
            "counts": {a: sum(a in js for js in by_clip.values()) for a in annotators},
            "pairs": pairs,
            "fleiss_kappa": None if fleiss is None else round(fleiss, 4),
            "fleiss_clips": fleiss_clips,
            "multiply_judged_clips": len(multi),
            "disagreements": disagreements}
