"""Re-export the shipped TC-ResNet8 from its checkpoint and write its full model card.

    python tools/ship_model.py runs/tc8-neg2/best.pt

When the checkpoint holds the network already shipped, keeps the card's calibrated thresholds
and calibration record (they were measured on validation streams with this network; a re-export
changes only how the front end is computed, equal within 1e-4). A new network drops them: run
`kwspot calibrate shipped ...` next. Adds what a model card needs: training data and its
licence, metrics with the data they were measured on, intended use and limitations.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import torch

from kwspot.checkpoint import load_classifier, load_record, model_record, save_record
from kwspot.export import export_onnx, parity_clips
from kwspot.fileio import write_card
from kwspot.runtime.model import card_path, pretrained_path

KEPT = ("thresholds", "calibration")

DOCUMENTATION = {
    "training_data": {
        "name": "Speech Commands v0.02 (speech_commands_lite subset: ~2.2k keyword training "
                "clips, official validation/testing lists), plus non-keyword speech: Free "
                "Spoken Digit Dataset speakers george/jackson/nicolas and espeak-ng sentences",
        "licence": "Speech Commands: CC BY 4.0; FSDD: CC BY-SA 4.0",
        "attribution": "Pete Warden, 'Speech Commands: A Dataset for Limited-Vocabulary Speech "
                       "Recognition', arXiv:1804.03209, 2018 (Google); Free Spoken Digit "
                       "Dataset, Zohar Jackson et al.",
    },
    "intended_use": "Always-on spotting of the ten Speech Commands words (yes, no, up, down, "
                    "left, right, on, off, stop, go) in 16 kHz English speech on a CPU; a "
                    "reference model and a starting point for fine-tuning.",
    "limitations": [
        "Thresholds were calibrated for 2 false alarms per hour on validation streams of "
        "synthetic and read speech; real rooms, far-field microphones, music and TV are "
        "untested.",
        "English words only; accents beyond the Speech Commands speakers are not measured.",
    ],
}

# Measured on the shipped network (runs/tc8-neg2/best.pt, whose weights have this fingerprint):
# written only for that network, so a new one never inherits figures it was not measured on.
MEASURED_NETWORK = "5f049239251de952279920c490bb3bd1cf7bf21582dcf44098031736a65eecbe"
SHIPPED_MEASUREMENTS = {
    "metrics": [
        {"name": "clip accuracy, 12 classes", "value": 0.8536,
         "data": "speech_commands_lite test split (testing_list.txt speakers, 813 clips)",
         "command": "kwspot eval src/kwspot/pretrained/tc-resnet8-speech-commands.onnx "
                    "--data ../shared/data/speech_commands_lite"},
        {"name": "false rejects at the card's thresholds", "value": 0.558,
         "false_alarms_per_hour": 2.12,
         "data": "2.36 h of held-out test streams (test speakers, generated noise, 5-25 dB "
                 "SNR); docs/results.md",
         "command": "kwspot eval-stream --streams runs/streams/test"},
    ],
    "limitations": [
        "Trained on a reduced subset (~2.2k keyword clips): recall at the calibrated "
        "thresholds is low (about 44 % of keywords on held-out streams).",
    ],
}


def fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 of the weights (names, shapes and values, in order)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def same_network(model: torch.nn.Module, shipped_checkpoint: Path) -> bool:
    """Whether the checkpoint already shipped holds exactly these weights."""
    if not shipped_checkpoint.is_file():
        return False
    shipped = load_record(shipped_checkpoint)["state_dict"]
    mine = model.state_dict()
    return shipped.keys() == mine.keys() and all(torch.equal(shipped[k], mine[k])
                                                 for k in mine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--out", default=str(pretrained_path()))
    parser.add_argument("--check-data", default="../shared/data/speech_commands_lite")
    args = parser.parse_args()
    out = Path(args.out)
    previous = json.loads(card_path(out).read_text()) if card_path(out).exists() else {}
    model, record = load_classifier(args.checkpoint)
    shipped_network = same_network(model, out.with_suffix(".pt"))
    if not shipped_network:
        previous = {}
        print(f"a new network: no thresholds carried over; next: `kwspot calibrate {out} "
              "VALIDATION_STREAMS... --target-fa-per-hour 2`")
    if fingerprint(model) != MEASURED_NETWORK:
        print("not the network the card's metrics were measured on: the card gets no "
              "metrics; measure it and add them here (SHIPPED_MEASUREMENTS)")
    check = args.check_data if Path(args.check_data).is_dir() else None
    card = export_onnx(model, out, parity_clips(check, 32, model.features.clip_samples), record)
    card.update({key: previous[key] for key in KEPT if key in previous})
    card.update(DOCUMENTATION)
    if "thresholds" not in card:  # not calibrated yet: the card must not say it is
        card["limitations"] = [line for line in DOCUMENTATION["limitations"]
                               if not line.startswith("Thresholds were calibrated")]
    if fingerprint(model) == MEASURED_NETWORK:
        card["metrics"] = SHIPPED_MEASUREMENTS["metrics"]
        card["limitations"] = SHIPPED_MEASUREMENTS["limitations"] + DOCUMENTATION["limitations"]
    write_card(card, out)
    # the checkpoint ships too (weights and record only), so the shipped model can be
    # exported to any format: `kwspot export shipped --format tflite ...`
    save_record(model_record(model, step=record.get("step"),
                             val_accuracy=record.get("val_accuracy"),
                             config=record.get("config")), out.with_suffix(".pt"))
    print(f"wrote {out} and {out.with_suffix('.pt').name} "
          f"(parity {card['parity']['max_abs_diff']:.2e})")


if __name__ == "__main__":
    main()
