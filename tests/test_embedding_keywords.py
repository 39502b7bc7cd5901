"""``kwspot train-embedding``: a keyword classifier for any dataset on the frozen speech
embedding, with rounds of hard negatives mined from training streams, resumable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kwspot.cli import main
from kwspot.datasets import DataConfig, open_dataset
from kwspot.datasets.streams import Item, StreamConfig, write_streams
from kwspot.errors import KwspotError
from kwspot.runtime.model import load_keyword_model, network_path
from kwspot.wakeword.keywords import (
    EmbeddingTrainConfig,
    mine_windows,
    split_windows,
    train_embedding_classifier,
)
from kwspot.wakeword.model import WINDOW_SAMPLES

pytest.importorskip("onnxruntime")

KEYWORDS = ("yes", "no")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two keywords and one other word spoken by espeak-ng (voices are speakers: splits)."""
    from kwspot.datasets.synth import synthesize_dataset

    root = tmp_path_factory.mktemp("emb-data") / "data"
    synthesize_dataset(list(KEYWORDS), root, clips_per_word=24, seed=3)
    synthesize_dataset(["tree", "house"], root, clips_per_word=16, seed=4)
    return root


def _config(path: Path, **changes: object) -> EmbeddingTrainConfig:
    base = dict(data=DataConfig(str(path), keywords=KEYWORDS, unknown_fraction=1.0,
                                train_unknown_fraction=float("inf")),
                keyword_copies=1, silence_copies=1, epochs=6, threads=2)
    return EmbeddingTrainConfig(**{**base, **changes})


def _streams(data: Path, out: Path, split: str = "train") -> list[str]:
    """keywords.wav and negatives.wav of ``split``'s clips (a tiny `kwspot streams`)."""
    from kwspot.clips import decode_clips

    dataset = open_dataset(DataConfig(str(data), keywords=KEYWORDS, unknown_fraction=1.0))
    table = decode_clips(dataset.split(split), 16000)
    items = [Item("keyword" if u.label in KEYWORDS else "unknown_word", u.label, a)
             for u, a in zip(table.utterances, table.audio, strict=True)
             if u.label in KEYWORDS or u.label == "_unknown_"]
    write_streams([i for i in items if i.kind == "keyword"],
                  [i for i in items if i.kind != "keyword"], out,
                  StreamConfig(split=split, negatives_minutes=0.5, seed=1), {"split": split})
    return [str(out / "keywords.wav"), str(out / "negatives.wav")]


@pytest.fixture(scope="module")
def trained(data: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("emb-out")
    streams = _streams(data, out / "streams")
    cfg = _config(data, mine_streams=tuple(streams), mine_rounds=1, mine_threshold=0.05)
    lines: list[str] = []
    summary = train_embedding_classifier(cfg, out, log=lines.append)
    return cfg, out, summary, lines


def test_windows_hold_each_clip_with_its_label(data: Path) -> None:
    dataset = open_dataset(_config(data).data)
    audio, labels = split_windows(dataset, "train", [], {"keyword": 2, "unknown": 1,
                                                         "silence": 1}, 0.7)
    rows = dataset.split("train")
    kinds = [u.label for u in rows]
    expected = sum(2 if k in KEYWORDS else 1 for k in kinds)
    assert audio.shape == (expected, WINDOW_SAMPLES)
    assert sorted(set(labels.tolist())) == sorted({dataset.labels.index(k) for k in kinds})
    assert np.isfinite(audio).all() and np.abs(audio).max() <= 1.0
    # the same seed makes the same windows: seeds of the head compare on one set
    again, _ = split_windows(dataset, "train", [], {"keyword": 2, "unknown": 1,
                                                    "silence": 1}, 0.7)
    np.testing.assert_array_equal(audio, again)


def test_it_trains_mines_a_round_and_exports_a_carded_classifier(trained) -> None:
    _cfg, out, summary, lines = trained
    model_path = out / "model.onnx"
    card = json.loads(model_path.with_suffix(".json").read_text())
    assert card["labels"] == summary["labels"] == ["_silence_", "_unknown_", "yes", "no"]
    assert card["training"]["mined_windows"] == summary["mined_windows"]
    rounds = summary["mining"]["rounds"]
    assert len(rounds) == 1 and Path(rounds[0]["model"]).is_file()
    assert rounds[0]["mined_windows"] == summary["mined_windows"] > 0  # at threshold 0.05
    assert any(line.startswith("round 1:") for line in lines)
    assert summary["parity"] <= 1e-4
    # the export scores audio as every kwspot model does, and tells the keywords apart on
    # validation windows better than chance (4 classes)
    assert summary["val_accuracy"] > 0.5
    model = load_keyword_model(model_path)
    assert model.labels == card["labels"]


def test_a_second_run_resumes_from_its_caches_and_repeats_the_network(trained) -> None:
    cfg, out, summary, _ = trained
    round_model = Path(summary["mining"]["rounds"][0]["model"])
    stamp = round_model.stat().st_mtime_ns
    first = network_path(out / "model.onnx").read_bytes()
    lines: list[str] = []
    again = train_embedding_classifier(cfg, out, log=lines.append)
    assert round_model.stat().st_mtime_ns == stamp  # not retrained
    assert not any("windows made" in line or "training the model" in line for line in lines)
    assert again["mined_windows"] == summary["mined_windows"]
    assert network_path(out / "model.onnx").read_bytes() == first  # same seed, same network


def test_mining_refuses_streams_that_are_not_training_audio(trained, data: Path,
                                                            tmp_path: Path) -> None:
    _cfg, out, _summary, _ = trained
    streams = _streams(data, tmp_path / "val", split="validation")
    with pytest.raises(KwspotError, match="mine only training streams"):
        mine_windows(out / "model.onnx", streams, 0.5, tmp_path / "memo.npz", 10, 0)


@pytest.mark.parametrize(("changes", "message"), [
    ({"mine_rounds": 1}, "mining needs streams"),
    ({"context": 1.5}, "context must be in"),
    ({"unknown_weight": 0.0}, "unknown_weight must be positive"),
    ({"epochs": 0}, "epochs must be at least 1"),
    ({"mine_limit": 0}, "mine_limit must be at least 1"),
    ({"mine_margin_s": -1.0}, "mine_margin_s must be >= 0"),
    ({"mine_streams": ("nowhere.wav",), "mine_rounds": 1}, "no ground truth"),
])
def test_bad_settings_are_one_clear_error(data: Path, tmp_path: Path, changes: dict,
                                          message: str) -> None:
    with pytest.raises(KwspotError, match=message):
        train_embedding_classifier(_config(data, **changes), tmp_path)
    assert not (tmp_path / "work").exists()  # refused before anything was made


def test_validation_streams_are_refused_before_anything_is_embedded(data: Path,
                                                                    tmp_path: Path) -> None:
    streams = _streams(data, tmp_path / "val", split="validation")
    with pytest.raises(KwspotError, match="mine only training streams"):
        train_embedding_classifier(_config(data, mine_streams=tuple(streams), mine_rounds=1),
                                   tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_data_without_unknown_trains_every_label_and_refuses_mining(data: Path,
                                                                    tmp_path: Path) -> None:
    """keywords=(): every label a class, no _unknown_ / _silence_; accuracy is still said."""
    import torch

    plain = DataConfig(str(data), keywords=())
    streams = _streams(data, tmp_path / "streams")
    with pytest.raises(KwspotError, match="_unknown_ class"):
        train_embedding_classifier(_config(data, data=plain, mine_streams=tuple(streams),
                                           mine_rounds=1), tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    torch.set_num_threads(1)
    summary = train_embedding_classifier(_config(data, data=plain, epochs=2, threads=2),
                                         tmp_path / "out")
    assert torch.get_num_threads() == 1  # the library's thread count does not leak
    assert sorted(summary["labels"]) == ["house", "no", "tree", "yes"]
    assert 0.0 <= summary["val_accuracy"] <= 1.0
    assert summary["mining"]["rounds"] == []


def test_a_changed_setting_retrains_the_round(trained, tmp_path: Path) -> None:
    import dataclasses

    cfg, out, summary, _ = trained
    round_model = Path(summary["mining"]["rounds"][0]["model"])
    stamp = round_model.stat().st_mtime_ns
    lines: list[str] = []
    changed = dataclasses.replace(cfg, unknown_weight=2.0)
    train_embedding_classifier(changed, tmp_path / "changed", work=out / "work",
                               log=lines.append)
    assert "round 1: training the model that mines it" in lines
    assert round_model.stat().st_mtime_ns != stamp


def test_given_models_mine_the_first_rounds(trained, tmp_path: Path) -> None:
    import dataclasses

    cfg, out, _summary, _ = trained
    given = dataclasses.replace(cfg, mine_models=(str(out / "model.onnx"),), mine_rounds=0)
    again = train_embedding_classifier(given, tmp_path / "given", work=out / "work")
    rounds = again["mining"]["rounds"]
    assert [r["model"] for r in rounds] == [str(out / "model.onnx")]
    assert again["mined_windows"] == rounds[0]["mined_windows"]


def test_eval_and_verify_feed_the_model_centred_clips(trained, data: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """run_evaluation and verify_export both pass the scorer's pad on."""
    from kwspot.evaluate import clips as clip_eval
    from kwspot.evaluate import verify

    _cfg, out, _summary, _ = trained
    seen: list[object] = []
    real = clip_eval.evaluation_clips

    def spy(*args, **kwargs):
        seen.append(args[6] if len(args) > 6 else kwargs.get("pad"))
        return real(*args, **kwargs)

    monkeypatch.setattr(clip_eval, "evaluation_clips", spy)
    monkeypatch.setattr(verify, "evaluation_clips", spy)
    data_cfg = DataConfig(str(data), keywords=KEYWORDS, unknown_fraction=1.0)
    clip_eval.run_evaluation(out / "model.onnx", data_cfg, "test", None)
    verify.verify_export(out / "model.onnx", data_cfg, "test", runs=3)
    assert len(seen) == 2
    assert all(isinstance(pad, np.ndarray) and pad.shape == (WINDOW_SAMPLES,) for pad in seen)


def test_cli_says_what_is_wrong_in_one_line(data: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    code = main(["train-embedding", "--data", str(data), "--out", str(tmp_path),
                 "--mine-rounds", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "mining needs streams" in err[0]


def test_eval_centres_short_clips_on_the_models_stream_silence(trained, tmp_path: Path) -> None:
    """A 1 s clip in a 1.98 s window: centred on what the model hears between words (the
    faint noise its streams are primed with), not followed by digital zeros it never heard."""
    from kwspot.audio import save_audio
    from kwspot.clips import decode_clips
    from kwspot.data import Utterance
    from kwspot.evaluate.clips import load_scorer

    _cfg, out, _summary, _ = trained
    scorer = load_scorer(out / "model.onnx")
    assert scorer.window_samples == WINDOW_SAMPLES
    assert scorer.pad is not None and scorer.pad.shape == (WINDOW_SAMPLES,)
    assert 0 < float(np.sqrt(np.mean(scorer.pad**2))) < 1e-3
    tone = (0.3 * np.sin(np.arange(16000) * 0.1)).astype(np.float32)
    save_audio(tmp_path / "tone.wav", tone)
    row = decode_clips([Utterance(str(tmp_path / "tone.wav"), "yes", "test")],
                       WINDOW_SAMPLES, pad=scorer.pad).audio[0]
    start = (WINDOW_SAMPLES - 16000) // 2
    np.testing.assert_allclose(row[start : start + 16000], tone, atol=1e-4)  # 16-bit WAV
    np.testing.assert_array_equal(row[:start], scorer.pad[:start])
    np.testing.assert_array_equal(row[start + 16000 :], scorer.pad[start + 16000 :])
    # a model whose window is the clip is fed as it was trained: no pad
    assert load_scorer("shipped").pad is None


def test_cli_trains_on_prepared_data(data: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture) -> None:
    """Prepared data has its recipe fixed: the command must not change it behind the user."""
    from kwspot.datasets.prepare import prepare_dataset

    prepare_dataset(DataConfig(str(data), keywords=KEYWORDS, unknown_fraction=1.0),
                    tmp_path / "prep")
    code = main(["train-embedding", "--data", str(tmp_path / "prep"), "--out",
                 str(tmp_path / "out"), "--keyword-copies", "1", "--silence-copies", "1",
                 "--epochs", "2", "--threads", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["labels"] == ["_silence_", "_unknown_", "yes", "no"]
    assert (tmp_path / "out" / "model.onnx").is_file()
    assert "validation accuracy" in captured.err


def test_several_heads_export_their_mean_posterior(trained, tmp_path: Path) -> None:
    """--heads 2: two seeds' heads in one graph whose softmax is their mean posterior."""
    import dataclasses

    import torch

    from kwspot.wakeword.model import AveragedHeads, TemporalHead

    cfg, out, _summary, _ = trained
    two = dataclasses.replace(cfg, heads=2, mine_rounds=0, mine_streams=())
    summary = train_embedding_classifier(two, tmp_path / "two", work=out / "work")
    card = json.loads((tmp_path / "two" / "model.json").read_text())
    assert card["training"]["heads"] == 2 and card["training"]["head_seeds"] == [0, 1]
    assert summary["parity"] <= 1e-4  # the averaged graph matches PyTorch too
    state = torch.load(tmp_path / "two" / "model.head.pt")
    heads = AveragedHeads([TemporalHead(classes=4), TemporalHead(classes=4)])
    heads.load_state_dict(state)
    heads.eval()
    x = torch.randn(5, 96, 16)
    with torch.no_grad():
        mean = torch.stack([torch.softmax(h(x), 1) for h in heads.heads]).mean(0)
        np.testing.assert_allclose(torch.softmax(heads(x), 1).numpy(), mean.numpy(), atol=1e-6)
        # two seeds make two different heads (else the mean would be one head)
        assert not torch.allclose(heads.heads[0](x), heads.heads[1](x))
    with pytest.raises(KwspotError, match="heads must be at least 1"):
        train_embedding_classifier(dataclasses.replace(cfg, heads=0), tmp_path / "none")


def test_the_embedding_memo_scores_a_stream_as_the_plain_model(trained, tmp_path: Path) -> None:
    """The benchmarks' figures come through the memo; it must give what eval-stream gives."""
    from kwspot.evaluate.streams import score_stream
    from kwspot.runtime.detector import Detector
    from kwspot.wakeword.memo import load_store, memoized_model, save_store

    _cfg, out, _summary, _ = trained
    stream = str(out / "streams" / "keywords.wav")
    plain = score_stream(Detector(load_keyword_model(out / "model.onnx")), stream)
    store: dict = {}
    first = score_stream(Detector(memoized_model(out / "model.onnx", store)), stream)
    assert store  # it remembered the stream's embeddings
    save_store(store, tmp_path / "memo.npz")
    again = score_stream(Detector(memoized_model(out / "model.onnx",
                                                 load_store(tmp_path / "memo.npz"))), stream)
    for scored in (first, again):  # computed, and read back from disk
        np.testing.assert_array_equal(scored.ends, plain.ends)
        np.testing.assert_allclose(scored.smoothed, plain.smoothed, atol=1e-6)


def test_the_memo_is_keyed_by_the_embedding_not_its_weights_file_name(tmp_path: Path) -> None:
    """One embedding saved under two weights-file names shares a memo; other weights do not."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from kwspot.wakeword.memo import embedding_digest

    def save(name: str, scale: float) -> Path:
        weight = numpy_helper.from_array(np.full((64, 64), scale, np.float32), "w")
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], [weight])
        path = tmp_path / f"{name}.embed.onnx"
        onnx.save(helper.make_model(graph), str(path), save_as_external_data=True,
                  location=f"{name}.weights", size_threshold=0)
        assert (tmp_path / f"{name}.weights").is_file()
        return path

    first, renamed, other = save("a", 0.5), save("b", 0.5), save("c", 0.25)
    assert first.read_bytes() != renamed.read_bytes()  # the file names its weights
    assert embedding_digest(first) == embedding_digest(renamed)
    assert embedding_digest(first) != embedding_digest(other)
