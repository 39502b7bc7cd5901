"""Average the posteriors of several heads trained on the same frozen speech embedding (for
instance seeds of one ``kwspot train-embedding`` recipe) and score the result on validation
streams, the way ``kwspot eval-stream`` does (through the embedding memo of
``embedding_streams.py``). ``kwspot train-embedding --heads N`` trains such a model in one
go; this program combines heads that exist already (their ``.head.pt`` files).

    python benchmarks/average_heads.py runs/ens/ens3.onnx runs/emb12/emb12-w4-m3.head.pt \\
        runs/emb12/emb12-w4-m3-s1.head.pt runs/emb12/emb12-w4-m3-s2.head.pt \\
        --streams runs/streams/validation/keywords.wav runs/streams/validation/negatives.wav
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from embedding_streams import stream_figures

from kwspot.wakeword.export import export_wakeword
from kwspot.wakeword.memo import store_for
from kwspot.wakeword.model import AveragedHeads, TemporalHead, WakewordClassifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="the averaged export (.onnx)")
    parser.add_argument("heads", nargs="+", help=".head.pt files (their .json cards beside)")
    parser.add_argument("--streams", nargs="+", required=True, help="validation streams")
    parser.add_argument("--check", default="runs/emb12/features-c8d54f43f843-4-1-3-0.7.npz",
                        help="a train-embedding feature cache whose 'check' windows test "
                             "the export's parity")
    parser.add_argument("--memo", default="runs/emb12", help="folder of the embedding memo")
    args = parser.parse_args()
    out = Path(args.out)
    cards = [json.loads(Path(h.removesuffix(".head.pt") + ".json").read_text())
             for h in args.heads]
    labels = cards[0]["labels"]
    if any(card["labels"] != labels for card in cards):
        raise SystemExit("the heads have different labels")
    heads = []
    for path in args.heads:
        head = TemporalHead(classes=len(labels))
        head.load_state_dict(torch.load(path))
        heads.append(head.eval())
    model = WakewordClassifier("keywords", AveragedHeads(heads), labels=labels).eval()
    check = np.load(args.check)["check"]
    export_wakeword(model, out, check, extra={"model": "embedding-keywords",
                                              "averaged_heads": args.heads})
    figures = stream_figures(out, args.streams, store_for(out, Path(args.memo)))
    out.with_suffix(".validation.json").write_text(json.dumps(figures, indent=1) + "\n")
    print(json.dumps(figures["frr_at_fa_per_hour"], indent=1))


if __name__ == "__main__":
    main()
