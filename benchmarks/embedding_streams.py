"""The frozen speech embedding as a 12-class keyword spotter on streams: does the pretrained
representation that wins on clips (``embedding_12class.py``: 92.7 % against ~87 %) also cut
false rejects at a fixed false-alarm budget, where the product lives?

Training windows are 1.98 s (the embedding model's window), built from the **training split
only** (the same material as the shipped model: every training ``_unknown_`` clip plus the
``kwspot negatives`` folder). Each window holds one clip at a random place with, most of the
time, other non-keyword speech before and after it (as in a stream, where a keyword is
rarely alone), then the wake-word augmentation (reverb, microphone colouring, noise from the
training noise files or coloured noise, level). The label is the clip's. Validation windows
come from the validation split the same way (fixed seed) and pick the best epoch. The head
(``TemporalHead``, 12 outputs) trains on the frozen embeddings; the model is exported like a
wake word (audio in, front end and embedding inside, a streaming embedding graph) and can be
scored with ``kwspot eval-stream``.

    python benchmarks/embedding_streams.py --out runs/emb12 --seed 0 \
        --streams runs/streams/validation/keywords.wav runs/streams/validation/negatives.wav
    kwspot eval-stream runs/emb12/emb12.onnx runs/streams/validation/keywords.wav \
        runs/streams/validation/negatives.wav --out runs/emb12/validation-streams

The training is ``kwspot train-embedding`` (``kwspot.wakeword.keywords``); this program adds
``--streams``: it scores the export the way ``kwspot eval-stream`` does, with each embedding of
the streams computed once and remembered for the next head (the figures are the same; the
last command checks it). Its defaults are the library's except ``--unknown-weight`` (1 here,
the first measured row).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from kwspot.datasets import DataConfig
from kwspot.wakeword.keywords import EmbeddingTrainConfig, train_embedding_classifier
from kwspot.wakeword.memo import load_store, memoized_model, save_store, store_for

TARGETS = (0.5, 1, 2, 5, 10, 20)


def stream_figures(model_path: Path, streams: list[str], store_path: Path) -> dict:
    """``kwspot eval-stream``'s figures for one export, the embeddings memoized."""
    from kwspot.evaluate.streams import evaluate_streams, operating_points

    store = load_store(store_path)
    before = len(store)
    report = evaluate_streams(memoized_model(model_path, store), streams)
    if len(store) > before:
        save_store(store, store_path)
    overall = operating_points(report["sweep"], report["keywords"], TARGETS)["overall"]
    points = {key: None if best is None else {
        "frr": round(best["frr"], 4), "fa_per_hour": round(best["fa_per_hour"], 2),
        "threshold": best["threshold"]} for key, best in overall.items()}
    default = report["default_thresholds"]
    return {"model": str(model_path), "hours": report["hours"], "frr_at_fa_per_hour": points,
            "at_0.8": {"frr": default["frr"], "fa_per_hour": default["fa_per_hour"],
                       "false_alarms_by_source": default["false_alarms_by_source"]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data/speech_commands_lite")
    parser.add_argument("--negatives", default="data/negatives-train")
    parser.add_argument("--out", default="runs/emb12",
                        help="the export and its result; also the caches (shared by runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--keyword-copies", type=int, default=4)
    parser.add_argument("--unknown-copies", type=int, default=1)
    parser.add_argument("--silence-copies", type=int, default=3)
    parser.add_argument("--context", type=float, default=0.7,
                        help="share of windows with speech around the clip")
    parser.add_argument("--name", default="emb12", help="the export's name in --out")
    parser.add_argument("--unknown-weight", type=float, default=1.0,
                        help="times the balanced loss weight of _unknown_")
    parser.add_argument("--mine-model", nargs="*", default=[],
                        help="exports whose false alarms on --mine-streams become "
                             "_unknown_ training windows (several: rounds of mining)")
    parser.add_argument("--mine-rounds", type=int, default=0,
                        help="further rounds, each mined by a model trained here")
    parser.add_argument("--mine-streams", nargs="*", default=[],
                        help="streams of training audio (kwspot streams --split train)")
    parser.add_argument("--mine-threshold", type=float, default=0.5)
    parser.add_argument("--mine-limit", type=int, default=8000)
    parser.add_argument("--mine-margin-s", type=float, default=0.0,
                        help="keep mined windows this far from true keywords too")
    parser.add_argument("--streams", nargs="*", default=[],
                        help="validation streams to score the export on (kwspot eval-stream)")
    args = parser.parse_args()
    start = time.perf_counter()
    out = Path(args.out)
    cfg = EmbeddingTrainConfig(
        data=DataConfig(args.data, train_unknown_fraction=math.inf,
                        negatives=(args.negatives,)),
        name=args.name, keyword_copies=args.keyword_copies,
        unknown_copies=args.unknown_copies, silence_copies=args.silence_copies,
        context=args.context, unknown_weight=args.unknown_weight, epochs=args.epochs,
        seed=args.seed, mine_streams=tuple(args.mine_streams),
        mine_models=tuple(args.mine_model), mine_rounds=args.mine_rounds,
        mine_threshold=args.mine_threshold, mine_limit=args.mine_limit,
        mine_margin_s=args.mine_margin_s, command=" ".join(["python", *sys.argv]))
    summary = train_embedding_classifier(cfg, out, work=out,
                                         log=lambda m: print(m, file=sys.stderr, flush=True))
    recipe = {k: getattr(args, k) for k in ("keyword_copies", "unknown_copies",
                                            "silence_copies", "context")}
    result = {"name": args.name, "best_epoch": summary["best_epoch"],
              "val_accuracy": summary["val_accuracy"],
              "train_windows": summary["train_windows"], "recipe": recipe,
              "unknown_weight": args.unknown_weight, "seed": args.seed,
              "mined": {"model": [r["model"] for r in summary["mining"]["rounds"]],
                        "streams": args.mine_streams, "threshold": args.mine_threshold,
                        "windows": summary["mined_windows"]},
              "parity": summary["parity"]}
    exported = out / f"{args.name}.onnx"
    if args.streams:
        result["validation_streams"] = stream_figures(exported, args.streams,
                                                      store_for(exported, out))
    result["seconds"] = round(time.perf_counter() - start)
    (out / f"{args.name}.result.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
