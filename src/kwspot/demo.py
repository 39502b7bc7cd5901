"""``kwspot demo``: the whole lap on data made on the spot, so a fresh machine with nothing but
``pip install`` can see every stage work: synthesize -> train -> evaluate -> export -> detect."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kwspot.audio import save_audio
from kwspot.errors import KwspotError

MARKER = ".kwspot-demo"


@dataclass(frozen=True)
class DemoConfig:
    out: Path = Path("runs/demo")
    keywords: tuple[str, ...] = ("yes", "no", "stop", "go")
    unknown_words: tuple[str, ...] = ("house", "tree", "seven", "bird", "happy", "dog", "wow",
                                      "marvin")
    clips_per_word: int = 150
    steps: int = 1500
    seed: int = 0
    sentence: tuple[str | float, ...] = field(default=(
        0.6, "house", 0.8, "yes", 1.0, "tree", 0.8, "stop", 1.0, "go", 0.9, "bird", 0.8, "no",
        0.8))


def _stage(number: int, title: str) -> float:
    print(f"\n[{number}/5] {title}", flush=True)
    return time.perf_counter()


def _prepare_out(out: Path) -> None:
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise KwspotError(f"{out} exists and is not a demo folder; choose another --out")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    (out / MARKER).write_text("made by kwspot demo; safe to delete\n")


def run_demo(cfg: DemoConfig) -> dict:
    from kwspot.datasets import DataConfig
    from kwspot.datasets.synth import render_utterance, synthesize_dataset
    from kwspot.evaluate import run_evaluation
    from kwspot.export import export_onnx, parity_clips
    from kwspot.runtime import OnnxKeywordModel
    from kwspot.runtime.detector import DetectorConfig, detect_audio
    from kwspot.training.config import OptimConfig, TrainConfig
    from kwspot.training.loop import train

    started = time.perf_counter()
    out = cfg.out
    _prepare_out(out)
    timings: dict[str, float] = {}

    t = _stage(1, "synthesize keyword speech with offline TTS (espeak-ng)")
    data_dir = out / "data"
    counts = synthesize_dataset(list(cfg.keywords), data_dir, cfg.clips_per_word, cfg.seed)
    unknown_clips = max(10, cfg.clips_per_word // 4)
    counts |= synthesize_dataset(list(cfg.unknown_words), data_dir, unknown_clips, cfg.seed + 1)
    timings["synthesize"] = time.perf_counter() - t
    print(f"    {sum(counts.values())} clips: {len(cfg.keywords)} keywords x "
          f"{cfg.clips_per_word}, {len(cfg.unknown_words)} other words x {unknown_clips} "
          f"-> {data_dir}")

    t = _stage(2, f"train TC-ResNet8 for {cfg.steps} steps (paper recipe, scaled)")
    data = DataConfig(path=str(data_dir), keywords=cfg.keywords, silence_fraction=0.1,
                      unknown_fraction=0.3, seed=cfg.seed)
    train_cfg = TrainConfig(data=data, optim=OptimConfig().scaled_to(cfg.steps),
                            eval_every=max(1, cfg.steps // 5), seed=cfg.seed)
    run_dir = out / "run"
    summary = train(train_cfg, run_dir, quiet=True)
    timings["train"] = time.perf_counter() - t
    print(f"    {summary['steps']} steps in {summary['train_seconds']:.0f} s; best validation "
          f"accuracy {summary['val_accuracy']:.1%} -> {run_dir / 'best.pt'}")

    t = _stage(3, "evaluate on the held-out test speakers")
    report, _bad, _map = run_evaluation(run_dir / "best.pt", data, "test", out / "eval")
    timings["evaluate"] = time.perf_counter() - t
    print(f"    accuracy {report.accuracy:.1%} on {report.total} test clips -> "
          f"{out / 'eval' / 'report.json'}, {out / 'eval' / 'confusion.png'}")
    print("    " + report.confusion_text().replace("\n", "\n    "))

    t = _stage(4, "export to ONNX (raw audio in, posteriors out) and check parity")
    from kwspot.checkpoint import load_classifier

    model, record = load_classifier(run_dir / "best.pt")
    onnx_path = out / "export" / "tc-resnet8-demo.onnx"
    check = parity_clips(data_dir, 32, model.features.clip_samples)
    card = export_onnx(model, onnx_path, check, record)
    timings["export"] = time.perf_counter() - t
    print(f"    {onnx_path} ({onnx_path.stat().st_size / 1024:.0f} KiB); max |onnx - torch| = "
          f"{card['parity']['max_abs_diff']:.1e} on {card['parity']['clips']} clips")

    t = _stage(5, "detect keywords in a synthesized sentence")
    rng = np.random.default_rng(cfg.seed + 1000)
    audio, spans = render_utterance(list(cfg.sentence), rng, noise_snr_db=25.0)
    sentence_path = out / "sentence.wav"
    save_audio(sentence_path, audio)
    events = detect_audio(audio, OnnxKeywordModel(onnx_path), DetectorConfig(threshold=0.7))
    timings["detect"] = time.perf_counter() - t
    said = " ".join(w for w, _s, _e in spans)
    print(f"    {sentence_path} ({len(audio) / 16000:.1f} s): \"{said}\"")
    expected = [(w, (s + e) / 2) for w, s, e in spans if w in cfg.keywords]
    hits = 0
    for word, centre in expected:
        found = [e for e in events if e.keyword == word and abs(e.time_s - centre) < 0.6]
        hits += bool(found)
        mark = f"found at {found[0].time_s:.2f} s (score {found[0].score:.2f})" if found \
            else "missed"
        print(f"    {word:>6} said at {centre:5.2f} s: {mark}")
    false_alarms = [e for e in events
                    if not any(e.keyword == w and abs(e.time_s - c) < 0.6 for w, c in expected)]
    for e in false_alarms:
        print(f"    false alarm: {e.keyword} at {e.time_s:.2f} s (score {e.score:.2f})")

    total = time.perf_counter() - started
    print(f"\ndone in {total:.0f} s ("
          + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
          + f"). Everything is in {out}/")
    print(f"try: kwspot detect {sentence_path} --model {onnx_path}")
    return {"accuracy": report.accuracy, "hits": hits, "expected": len(expected),
            "false_alarms": len(false_alarms), "seconds": total}
