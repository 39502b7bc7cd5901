"""What a user's own export says about itself: the data it was trained on (with the licence
kwspot can vouch for, and a plain "not recorded" where it cannot), the one accuracy the
checkpoint carries and which split it was measured on, and whatever the user adds with
``kwspot export --card FILE``. The shipped model's card is written by hand instead
(``carry_card`` keeps it on re-export)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kwspot.errors import KwspotError

SPEECH_COMMANDS_LICENCE = "CC BY 4.0"
SPEECH_COMMANDS_ATTRIBUTION = ("Pete Warden, 'Speech Commands: A Dataset for Limited-Vocabulary "
                               "Speech Recognition', arXiv:1804.03209, 2018 (Google)")
NOT_RECORDED = "not recorded by kwspot: give it with `kwspot export --card FILE`"
USER_FIELDS = ("training_data", "intended_use", "limitations", "metrics")
UNCALIBRATED = ("No calibrated thresholds: the detector uses its default; calibrate for a "
                "false-alarm rate with `kwspot calibrate`.")


def training_data_of(config: dict[str, Any] | None) -> dict[str, Any]:
    """The card's ``training_data`` from a run's data config: the folder (and the prepared
    manifest's checksum), Speech Commands' licence and attribution when the folder is in
    its released layout, and the extra negative folders."""
    from kwspot.datasets.prepare import is_prepared, read_prepared_info
    from kwspot.datasets.speech_commands import is_speech_commands

    data = (config or {}).get("data") or {}
    path = data.get("path")
    if not path:
        return {"name": "unknown (the checkpoint records no data path)",
                "licence": NOT_RECORDED}
    out: dict[str, Any] = {"path": str(path)}
    root = Path(path)
    if is_prepared(root):
        info = read_prepared_info(root)
        out["prepared_checksum"] = info.get("checksum")
        root = Path(info.get("root", root))
        out["root"] = str(root)
    if root.is_dir() and is_speech_commands(root):
        # the layout is all kwspot can see: a user's own clips laid out the same way are
        # not Google's, so the licence is stated for the dataset, not vouched for
        out.update(name=f"Speech Commands layout at {root.name} (official validation/testing "
                        "lists)",
                   licence=f"Google's Speech Commands: {SPEECH_COMMANDS_LICENCE}; other data "
                           f"in its layout: {NOT_RECORDED}",
                   attribution=SPEECH_COMMANDS_ATTRIBUTION)
    else:
        out.update(name=f"the clips under {root}", licence=NOT_RECORDED)
    if data.get("negatives"):
        out["negatives"] = {"folders": list(data["negatives"]), "licence": NOT_RECORDED}
    return out


def read_user_card(path: str | Path) -> dict[str, Any]:
    """The fields a user documents by hand, from a JSON file; anything else is refused so a
    typo does not silently vanish."""
    path = Path(path)
    try:
        fields = json.loads(path.read_text())
    except FileNotFoundError:
        raise KwspotError(f"--card {path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KwspotError(f"--card {path}: not a readable JSON file ({exc})") from None
    if not isinstance(fields, dict):
        raise KwspotError(f"--card {path}: must hold a JSON object with any of "
                          f"{', '.join(USER_FIELDS)}")
    unknown = sorted(set(fields) - set(USER_FIELDS))
    if unknown:
        raise KwspotError(f"--card {path}: unknown field(s) {', '.join(unknown)}; allowed: "
                          f"{', '.join(USER_FIELDS)}")
    for key in ("limitations", "metrics"):
        if key in fields and not isinstance(fields[key], list):
            raise KwspotError(f"--card {path}: {key} must be a list")
    return fields


def document_export(card: dict[str, Any], record: dict[str, Any] | None,
                    user: dict[str, Any] | None = None) -> dict[str, Any]:
    """``card`` with training data, metrics, intended use and limitations: derived from the
    checkpoint's record, then the user's fields on top (their training data replaces the
    derived one; their metrics and limitations are added)."""
    record = record or {}
    user = user or {}
    out = dict(card)
    out["training_data"] = user.get("training_data") or training_data_of(record.get("config"))
    metrics: list[Any] = []
    if record.get("val_accuracy") is not None:
        metrics.append({
            "name": f"clip accuracy, {len(card.get('labels', []))} classes",
            "value": round(float(record["val_accuracy"]), 4),
            "data": "the training run's validation split, on which this checkpoint was chosen "
                    "(optimistic: measure the test split with `kwspot eval MODEL --data DATA "
                    "--split test` or `kwspot verify-export`)",
            "step": record.get("step")})
    out["metrics"] = metrics + list(user.get("metrics", []))
    out["intended_use"] = user.get("intended_use", NOT_RECORDED)
    limitations = list(user.get("limitations", []))
    if "thresholds" not in out:
        limitations.append(UNCALIBRATED)  # ``write_thresholds`` removes it
    out["limitations"] = limitations
    return out
