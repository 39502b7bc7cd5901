"""Clip-level ROC per keyword: the area equals the Mann-Whitney statistic (ties count half)."""

from __future__ import annotations

import numpy as np

from kwspot.evaluate.clips import roc_curve, thin_curve


def test_roc_area_is_the_rank_statistic() -> None:
    rng = np.random.default_rng(0)
    positive = rng.random(600) < 0.3
    score = rng.random(600) + positive * 0.4
    score[::9] = 0.5  # ties
    curve = roc_curve(positive, score)
    pos, neg = score[positive], score[~positive]
    expected = (pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean()
    assert abs(curve["auc"] - expected) < 1e-12
    assert curve["fpr"][0] == curve["tpr"][0] == 0 and curve["fpr"][-1] == curve["tpr"][-1] == 1
    assert np.all(np.diff(curve["fpr"]) >= 0) and np.all(np.diff(curve["tpr"]) >= 0)
    thin = thin_curve(curve, points=50)
    assert len(thin["fpr"]) <= 50 and thin["fpr"][-1] == 1.0


def test_perfect_and_useless_scores() -> None:
    positive = np.array([True, True, False, False])
    assert roc_curve(positive, np.array([0.9, 0.8, 0.2, 0.1]))["auc"] == 1.0
    assert roc_curve(positive, np.array([0.5, 0.5, 0.5, 0.5]))["auc"] == 0.5
