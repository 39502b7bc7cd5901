"""``kwspot export`` and ``verify-export``: the deployment stage."""

from __future__ import annotations

import argparse
from pathlib import Path

from kwspot.cli.common import add_data_args, data_config
from kwspot.errors import KwspotError


def add_export_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export to ONNX or TFLite (audio in, posteriors out) + "
                       "model card", description="Export a checkpoint to ONNX or TFLite, float32 "
                       "or int8, with the feature front end inside the graph, plus a JSON model "
                       "card (also embedded in the file). Fails if the runtime and PyTorch "
                       "disagree by more than --tolerance on the check clips.")
    p.add_argument("checkpoint", help="checkpoint file or run directory (uses best.pt); "
                   "'shipped' for the shipped TC-ResNet8")
    p.add_argument("--out", default=None, metavar="FILE.onnx|FILE.tflite",
                   help="output model (default <run dir>/export/<model>.onnx, or "
                        "<run dir>/export/tflite/<model>.tflite: the two formats' cards "
                        "would otherwise share one name)")
    p.add_argument("--check-data", default=None, metavar="PATH",
                   help="folder of audio clips for the parity check (default: synthetic "
                        "speech-like signals)")
    p.add_argument("--check-clips", type=int, default=32, help="clips for the parity check")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest allowed |export - torch| posterior difference of the float "
                        "graphs (default 1e-4)")
    p.add_argument("--format", choices=["onnx", "tflite"], default="onnx",
                   help="onnx (ONNX Runtime) or tflite (ai-edge-litert; pip install "
                        "'kwspot[tflite]'); an --out suffix that says otherwise is an error")
    p.add_argument("--precision", choices=["float32", "int8"], default="float32",
                   help="int8: post-training static quantization of the network, calibrated "
                        "on --calibration-clips training clips (front end stays float)")
    p.add_argument("--calibration-data", default=None, metavar="MANIFEST",
                   help="manifest (or dataset folder/CSV) whose train split is drawn for "
                        "int8 calibration (default: the run's manifest.jsonl)")
    p.add_argument("--calibration-clips", type=int, default=300, metavar="N",
                   help="calibration clips for int8 (default 300)")
    p.add_argument("--calibration-seed", type=int, default=0, metavar="SEED",
                   help="seed drawing the calibration clips (default 0; logged in the card)")
    p.add_argument("--card", default=None, metavar="FILE.json",
                   help="your own card fields (JSON object with any of training_data, "
                        "intended_use, limitations, metrics): the data's name, licence and "
                        "attribution, what the model is for; kwspot derives what it can from "
                        "the run")
    p.add_argument("--no-stream-graph", action="store_true",
                   help="a causal model: leave out its incremental graph (<name>.stream.onnx), "
                        "so the engine scores zero-history 1 s windows every 100 ms (as a "
                        "model trained on clips alone was trained) instead of streaming it "
                        "with real history (as `kwspot train --history-ms` trains)")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> None:
    from kwspot.checkpoint import load_classifier, run_dir_of
    from kwspot.export import card_path, export_onnx, parity_clips
    from kwspot.export.documentation import document_export, read_user_card
    from kwspot.fileio import write_card
    from kwspot.runtime.model import SHIPPED, SHIPPED_EMBEDDING

    if args.checkpoint == SHIPPED_EMBEDDING:
        raise KwspotError(f"{SHIPPED_EMBEDDING} is already an export (float32 ONNX, in the "
                          "package); models on the speech embedding have no TFLite or int8 "
                          "export (docs/deploy.md)")
    suffix = "." + args.format
    if args.out and Path(args.out).suffix.lower() != suffix:
        raise KwspotError(f"--out {args.out}: {args.format} models end in {suffix} "
                          f"(use --format to choose the format)")
    if args.calibration_clips < 1:
        raise KwspotError(f"--calibration-clips must be at least 1, got {args.calibration_clips}")
    if args.checkpoint == SHIPPED:
        if args.precision == "int8" and not args.calibration_data:
            raise KwspotError("the shipped model has no run manifest: give --calibration-data "
                              "(e.g. the Speech Commands folder it was trained on)")
        if not args.out:
            raise KwspotError("exporting the shipped model needs --out FILE")
    shipped = is_shipped_checkpoint(args.checkpoint)
    if args.card and shipped:
        raise KwspotError("the shipped model keeps its own card; --card is for your models")
    user_card = read_user_card(args.card) if args.card else None
    model, record = load_classifier(args.checkpoint)
    warn_if_history_is_lost(record, args)
    tag = "" if args.precision == "float32" else f".{args.precision}"
    export_dir = run_dir_of(args.checkpoint) / "export"
    if args.format == "tflite":
        export_dir = export_dir / "tflite"
    out = Path(args.out) if args.out else export_dir / f"{model.model_name}{tag}{suffix}"
    audio = parity_clips(args.check_data, args.check_clips, model.features.clip_samples)
    calibration = None
    if args.precision == "int8":
        from kwspot.export.calibration import calibration_clips, calibration_log

        manifest = Path(args.calibration_data or run_dir_of(args.checkpoint) / "manifest.jsonl")
        clips, paths = calibration_clips(manifest, args.calibration_clips,
                                         args.calibration_seed, model.features.clip_samples,
                                         model.features.sample_rate)
        calibration = (clips, calibration_log(paths, args.calibration_seed, str(manifest)))
        print(f"int8 calibration: {len(paths)} training clips from {manifest} "
              f"(seed {args.calibration_seed})")
    if args.format == "tflite":
        from kwspot.export.tflite import export_tflite

        card = export_tflite(model, out, audio, record, tolerance=args.tolerance,
                             precision=args.precision, calibration=calibration)
    else:
        card = export_onnx(model, out, audio, record, tolerance=args.tolerance,
                           precision=args.precision, calibration=calibration,
                           stream_graph=not args.no_stream_graph)
    if shipped:
        card = keep_shipped_documentation(card, out)
    else:
        card = document_export(card, record, user_card)
        write_card(card, out)
    graphs = [card[k]["file"] for k in ("network", "stream") if isinstance(card.get(k), dict)]
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB), {', '.join(graphs)} "
          f"and {card_path(out)}")
    print(f"parity: max |{args.format} - torch| = {card['parity']['max_abs_diff']:.2e} "
          f"on {card['parity']['clips']} clips")
    if "stream" in card:
        print(f"incremental stream graph: one output every {card['detector']['hop_ms']:g} ms; "
              f"parity {card['stream']['parity']['max_abs_diff']:.2e}")
    if "quantization" in card:
        print(f"int8: max |int8 - torch| = "
              f"{card['quantization']['max_abs_diff_from_float']:.2e} (accuracy: "
              f"`kwspot verify-export {out} --data DATA`)")


def is_shipped_checkpoint(checkpoint: str) -> bool:
    """'shipped', or the packaged checkpoint file named by its path."""
    from kwspot.runtime.model import SHIPPED, pretrained_path

    if checkpoint == SHIPPED:
        return True
    path = Path(checkpoint)
    return path.is_file() and path.resolve() == pretrained_path().with_suffix(".pt").resolve()


def keep_shipped_documentation(card: dict, out: Path) -> dict:
    """An export of the shipped checkpoint keeps its card's data, licences, intended use,
    limitations and calibrated thresholds (``carry_card``)."""
    import json

    from kwspot.export.card import carry_card
    from kwspot.fileio import write_card
    from kwspot.runtime.model import SHIPPED, card_path, pretrained_path

    shipped = pretrained_path(SHIPPED)
    card = carry_card(card, json.loads(card_path(shipped).read_text()), shipped.name)
    write_card(card, out)
    print("kept the shipped card's training data, licences, intended use, limitations and "
          "calibrated thresholds")
    return card


def warn_if_history_is_lost(record: dict, args: argparse.Namespace) -> None:
    """A model trained with --history-ms is meant to be streamed incrementally; an export
    without the stream graph is scored on zero-history windows, a mode it was not trained in."""
    import warnings

    augment = (record.get("config") or {}).get("augment") or {}
    history_ms = augment.get("history_ms") or 0
    if not history_ms:
        return
    if args.format == "tflite" or args.precision == "int8" or args.no_stream_graph:
        what = "a TFLite" if args.format == "tflite" else (
            "an int8" if args.precision == "int8" else "a --no-stream-graph")
        warnings.warn(f"this model was trained with --history-ms {history_ms:g} to be streamed "
                      f"incrementally; {what} export has no stream graph, so the detector "
                      "will score zero-history windows, a mode it was not trained in",
                      stacklevel=2)


def add_verify_export_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify-export", help="an export's accuracy, parity, size and latency",
                       description="Run an exported model on a test split beside its PyTorch "
                       "checkpoint: both accuracies on the same clips, the largest posterior "
                       "difference, file sizes, and single-clip latency (median/p90, one "
                       "thread).")
    p.add_argument("model", help="exported model (.onnx or .tflite, with its card)")
    add_data_args(p)
    p.add_argument("--split", default="test", choices=("train", "validation", "test", "all"),
                   help="which clips (default test)")
    p.add_argument("--checkpoint", default=None, metavar="PT",
                   help="the checkpoint it was exported from (run dir, .pt, or shipped), "
                        "for comparison")
    p.add_argument("--runs", type=int, default=1000, help="latency runs (default 1000)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the result here")
    p.set_defaults(func=cmd_verify_export)


def cmd_verify_export(args: argparse.Namespace) -> None:
    import json

    from kwspot.evaluate.verify import verify_export
    from kwspot.fileio import atomic_write_text

    if args.runs < 1:
        raise KwspotError(f"--runs must be at least 1, got {args.runs}")
    result = verify_export(args.model, data_config(args), args.split, args.checkpoint,
                           args.runs, args.data_seed)
    print(f"{result['model']} on {result['data']} [{result['split']}], {result['clips']} clips")
    print(f"  accuracy: {result['accuracy']:.2%}")
    if "checkpoint" in result:
        print(f"  PyTorch checkpoint: {result['checkpoint_accuracy']:.2%} "
              f"(difference {100 * (result['accuracy'] - result['checkpoint_accuracy']):+.2f} pp)"
              f"; max |posterior difference| {result['max_abs_diff']:.2e}; same top class on "
              f"{result['argmax_agreement']:.2%} of clips")
    sizes = ", ".join(f"{name} {size / 1024:.0f} KiB" for name, size in
                      result["size_bytes"].items())
    print(f"  size: {sizes}")
    latency = result["latency_ms"]
    print(f"  latency (one clip, one thread, {latency['runs']} runs): median "
          f"{latency['median']:.3f} ms, p90 {latency['p90']:.3f} ms")
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")
