"""Evaluation: clips (accuracy, per-class precision/recall, confusion, ROC) and streams (false
rejects against false alarms per hour, DET, precision/recall by threshold, latency)."""

from kwspot.evaluate.clips import (
    ClassificationReport,
    Scorer,
    classification_report,
    load_scorer,
    plot_confusion,
    predict_proba,
    run_evaluation,
    write_report,
)

__all__ = ["ClassificationReport", "Scorer", "classification_report", "load_scorer",
           "plot_confusion", "predict_proba", "run_evaluation", "write_report"]
