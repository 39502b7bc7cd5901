"""Data review: the TC-ResNet team's annotation screen as a local web app — play a clip, see
its waveform, spectrogram and the model's opinion, judge it "(1) Correct / (2) Incorrect",
correct the label, comment, mark segments of long recordings. Judgements go to SQLite (WAL),
one row each, so several annotators can work at once and a killed server loses nothing
submitted. ``kwspot review export`` turns them into a corrected manifest.

    kwspot review DATA [--model M.onnx] [--db review.sqlite] [--annotator NAME]
    kwspot review export DATA --db review.sqlite --out corrected.csv
"""

from kwspot.review.agreement import agreement_report
from kwspot.review.clips import ReviewSet, load_review_set
from kwspot.review.export import export_manifest
from kwspot.review.store import Judgement, ReviewStore

__all__ = ["Judgement", "ReviewSet", "ReviewStore", "agreement_report", "export_manifest",
           "load_review_set"]
