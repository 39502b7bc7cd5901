"""Named recipes and `kwspot table`: jobs on one prepared manifest, resumable, on local Ray."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kwspot.cli import build_parser
from kwspot.cli.training import train_config_from_args
from kwspot.datasets import DataConfig
from kwspot.datasets.prepare import prepare_dataset
from kwspot.errors import KwspotError
from kwspot.experiments.jobs import Job
from kwspot.experiments.table import (
    TableConfig,
    build_table,
    late_change,
    parse_epochs,
    spearman,
)
from kwspot.models import build_model
from kwspot.profile import count_flops, count_parameters
from kwspot.training.recipes import recipe_for


def test_model_name_picks_its_published_recipe(tiny_dataset: Path) -> None:
    parse = build_parser().parse_args
    ds = train_config_from_args(parse(["train", "--data", str(tiny_dataset), "--keywords",
                                       "yes,no", "--model", "ds-cnn-s"]))
    assert (ds.features.n_mfcc, ds.features.window_ms, ds.features.hop_ms) == (10, 40, 20)
    assert ds.optim.optimizer == "adam" and ds.optim.lr_values == (5e-4, 1e-4, 2e-5)
    bc = train_config_from_args(parse(["train", "--data", str(tiny_dataset), "--model",
                                       "bc-resnet-3", "--epochs", "10"]))
    assert bc.features.kind == "logmel" and bc.optim.schedule == "cosine"
    assert bc.spec_augment.freq_width == 5 and bc.optim.warmup_steps > 0
    assert bc.optim.lr_at(bc.optim.steps - 1) < 0.01 * bc.optim.lr_values[0]
    # the TC-ResNet paper's literal run, and explicit options over the recipe
    tc = train_config_from_args(parse(["train", "--data", str(tiny_dataset), "--steps",
                                       "30000", "--n-mfcc", "20", "--dropout", "0.2"]))
    assert tc.optim.lr_boundaries == (10_000, 20_000) and tc.optim.optimizer == "sgd"
    assert tc.features.n_mfcc == 20 and tc.dropout == 0.2
    # SpecAugment is a recipe option for every model: on for TC-ResNet, off for BC-ResNet
    masked = train_config_from_args(parse(["train", "--data", str(tiny_dataset),
                                           "--spec-augment", "2,7,2,20"]))
    assert (masked.spec_augment.freq_masks, masked.spec_augment.freq_width,
            masked.spec_augment.time_masks, masked.spec_augment.time_width) == (2, 7, 2, 20)
    assert not tc.spec_augment.enabled
    plain = train_config_from_args(parse(["train", "--data", str(tiny_dataset), "--model",
                                          "bc-resnet-3", "--spec-augment", "off"]))
    assert not plain.spec_augment.enabled
    for bad in ("2,7,2", "a,b,c,d", "2,-1,2,20"):
        with pytest.raises(SystemExit):
            parse(["train", "--spec-augment", bad])


def test_table_runs_two_tiny_jobs_on_local_ray_and_resumes(tiny_dataset: Path,
                                                          tmp_path: Path) -> None:
    pytest.importorskip("ray")
    prepared = tmp_path / "prepared"
    info = prepare_dataset(DataConfig(str(tiny_dataset), keywords=("yes", "no", "stop")),
                           prepared)
    cfg = TableConfig(prepared=str(prepared), results_dir=str(tmp_path / "results"),
                      runs_dir=str(tmp_path / "runs"), models=("tc-resnet8", "ds-cnn-s"),
                      seeds=(0,), epochs={"tc-resnet8": 3, "ds-cnn-s": 3}, threads=1,
                      latency_runs=20, ray=True)
    done: list[str] = []
    rows = build_table(cfg, lambda r: done.append(r.job.name))
    assert sorted(done) == ["ds-cnn-s-e3-seed0", "tc-resnet8-e3-seed0"]
    assert [r["model"] for r in rows] == ["ds-cnn-s", "tc-resnet8"]  # the paper's order
    results = tmp_path / "results"
    record = json.loads((results / "tc-resnet8-e3-seed0.json").read_text())
    other = json.loads((results / "ds-cnn-s-e3-seed0.json").read_text())
    # both models scored on the very same prepared test clips
    assert record["data_checksum"] == other["data_checksum"] == info["checksum"]
    assert record["test_clips"] == other["test_clips"]
    assert record["test_clips"] > 0 and 0 <= record["test_accuracy"] <= 1
    assert record["validation_curve"]
    tiny_net = build_model("tc-resnet8", 40, len(info["labels"]))
    assert (record["params"], record["flops"]) == (count_parameters(tiny_net),
                                                   count_flops(tiny_net, (40, 98)))
    latency = json.loads((results / "latency.json").read_text())
    assert set(latency["models"]) == {"tc-resnet8", "ds-cnn-s"} and latency["runs"] == 20
    table = (results / "table.md").read_text()
    assert "tc-resnet8" in table and "ds-cnn-s" in table and info["checksum"] in table
    assert (results / "table.csv").read_text().count("\n") == 3
    assert (results / "table.png").stat().st_size > 0
    assert (results / "curves.png").stat().st_size > 0
    # results of other data are refused before anything trains
    other = tmp_path / "other"
    prepare_dataset(DataConfig(str(tiny_dataset), keywords=("yes", "no")), other)
    with pytest.raises(KwspotError, match="other data"):
        build_table(TableConfig(**{**cfg.__dict__, "prepared": str(other), "ray": False}))
    # done jobs are skipped: nothing retrains, the result files stay as they were
    before = {p.name: p.read_text() for p in results.glob("*-seed*.json")}
    again: list[str] = []
    build_table(TableConfig(**{**cfg.__dict__, "ray": False}), lambda r: again.append(1))
    assert again == [] and before == {p.name: p.read_text()
                                          for p in results.glob("*-seed*.json")}


def test_table_runs_jobs_side_by_side_in_local_processes(tiny_dataset: Path,
                                                          tmp_path: Path) -> None:
    prepared = tmp_path / "prepared"
    prepare_dataset(DataConfig(str(tiny_dataset), keywords=("yes", "no")), prepared)
    cfg = TableConfig(prepared=str(prepared), results_dir=str(tmp_path / "results"),
                      runs_dir=str(tmp_path / "runs"), models=("tc-resnet8", "ds-cnn-s"),
                      seeds=(0,), epochs={"tc-resnet8": 2, "ds-cnn-s": 2}, workers=2,
                      latency_runs=5)
    done: list[str] = []
    rows = build_table(cfg, lambda r: done.append(r.job.name))
    assert sorted(done) == ["ds-cnn-s-e2-seed0", "tc-resnet8-e2-seed0"]
    assert [r["trained_on"] for r in rows] == ["cpu", "cpu"]
    record = json.loads((tmp_path / "results" / "tc-resnet8-e2-seed0.json").read_text())
    assert record["device"].startswith("cpu (")
    assert "| cpu |" in (tmp_path / "results" / "table.md").read_text()
    # a job that fails in its process is reported, and the others still land
    bad = TableConfig(**{**cfg.__dict__, "seeds": (1,), "device": "cuda:7"})
    with pytest.raises(KwspotError, match=r"2 job\(s\) failed.*(no CUDA device|CUDA device)"):
        build_table(bad)
    for wrong in ({"device": "gpu"}, {"workers": 0}):
        with pytest.raises(KwspotError, match=r"--device|--workers"):
            TableConfig(**{**cfg.__dict__, **wrong})
    # a run folder left from another length is not resumed as this job
    (run,) = (tmp_path / "runs").glob("*/tc-resnet8-e2-seed0")
    run.rename(run.with_name("tc-resnet8-e3-seed0"))
    other = TableConfig(**{**cfg.__dict__, "models": ("tc-resnet8",), "workers": 1,
                           "epochs": {"tc-resnet8": 3}})
    with pytest.raises(KwspotError, match=r"a run of \d+ steps, but this job trains"):
        build_table(other)
    assert not (tmp_path / "results" / "tc-resnet8-e3-seed0.json").exists()


def test_an_interrupted_job_stops_the_table(tiny_dataset: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C stops the job in hand (state saved) and the table with it: the next job does
    not start (it used to be counted as one failed job, and the table went on)."""
    import kwspot.experiments.table as table_module
    from kwspot.errors import TrainingInterrupted

    prepared = tmp_path / "prepared"
    prepare_dataset(DataConfig(str(tiny_dataset), keywords=("yes", "no")), prepared)
    started: list[str] = []

    def interrupted(job, *args, **kwargs):
        started.append(job.name)
        raise TrainingInterrupted("interrupted at step 3; state saved")

    monkeypatch.setattr(table_module, "run_job", interrupted)
    cfg = TableConfig(prepared=str(prepared), results_dir=str(tmp_path / "results"),
                      runs_dir=str(tmp_path / "runs"), models=("tc-resnet8", "ds-cnn-s"),
                      seeds=(0,))
    with pytest.raises(TrainingInterrupted, match="state saved"):
        build_table(cfg)
    assert started == ["tc-resnet8-seed0"]


def test_table_helpers_and_bad_input(tmp_path: Path) -> None:
    assert parse_epochs(["res15=20", "ds-cnn-s=7.5"]) == {"res15": 20.0, "ds-cnn-s": 7.5}
    for bad in (["res15"], ["res15=-1"], ["res15=x"]):
        with pytest.raises(KwspotError, match="--epochs"):
            parse_epochs(bad)
    from kwspot.training.config import OptimConfig

    for bad in ({"batch_size": -5}, {"steps": 0}, {"lr_values": ()}):
        with pytest.raises(KwspotError):
            OptimConfig(schedule="cosine", **bad)
    assert late_change([[s, 0.9, 0.1] for s in range(8)]) == pytest.approx(0.0)
    assert late_change([[s, s / 10, 0.1] for s in range(8)]) == pytest.approx(20.0)
    assert late_change([[0, 0.5, 1.0]]) is None
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert Job("res15", 1).name == "res15-seed1" and Job("res15", 1, 20).name == "res15-e20-seed1"
    # the recipe's own length named explicitly is the same job, not another one
    assert Job("res8", 0, recipe_for("res8").epochs).name == "res8-seed0"
    with pytest.raises(KwspotError, match="not in the table"):
        build_table(TableConfig(prepared=str(tmp_path), models=("res8",),
                                epochs={"res-8": 20}))
    with pytest.raises(KwspotError, match="unknown models"):
        build_table(TableConfig(prepared=str(tmp_path), models=("nope",)))
    with pytest.raises(KwspotError, match="not prepared"):
        build_table(TableConfig(prepared=str(tmp_path), results_dir=str(tmp_path / "r"),
                                models=("tc-resnet8",), seeds=(0,)))


def test_a_table_run_for_some_models_keeps_every_result_present(tmp_path: Path) -> None:
    """A run for one model must add its rows, not drop the rows of models run before."""
    from kwspot.experiments.table import everything_present, summarize

    results = tmp_path / "results"
    results.mkdir()
    for model, seed, acc in (("tc-resnet8", 0, 0.88), ("tc-resnet8", 1, 0.86),
                             ("ds-cnn-s", 2, 0.81), ("tc-resnet8-causal", 0, 0.83)):
        record = {"model": model, "seed": seed, "data_checksum": "c", "test_accuracy": acc,
                  "flops": 1, "params": 1, "epochs": recipe_for(model).epochs, "steps": 100,
                  "validation_curve": [],
                  "train_seconds": 1.0, "device": "cpu"}
        (results / f"{model}-seed{seed}.json").write_text(json.dumps(record))
    cfg = TableConfig(prepared=str(tmp_path), results_dir=str(results),
                      models=("bc-resnet-3",), seeds=(0,))
    wide = everything_present(cfg)
    # the paper's order, then models outside it; the requested model stays (no rows yet)
    assert wide.models == ("ds-cnn-s", "tc-resnet8", "bc-resnet-3", "tc-resnet8-causal")
    assert wide.seeds == (0, 1, 2)
    rows = {r["model"]: r for r in summarize(wide)}
    assert set(rows) == {"ds-cnn-s", "tc-resnet8", "tc-resnet8-causal"}
    assert rows["tc-resnet8"]["seeds"] == 2 and rows["tc-resnet8"]["accuracy_mean"] == 87.0


def _record(model: str, seed: int, epochs: float, accuracy: float) -> dict:
    return {"model": model, "seed": seed, "test_accuracy": accuracy, "epochs": epochs,
            "steps": round(epochs * 10), "flops": 1e6, "params": 1e3, "train_seconds": 60.0,
            "device": "cpu (x86_64)",
            "validation_curve": [[10 * e, 0.5 + 0.01 * e, 1.0] for e in range(1, 9)]}


def test_summary_refuses_results_of_another_length_and_shows_no_spread_for_one_seed(
        tmp_path: Path) -> None:
    """A result file left from an earlier recipe length must not pass for the table's job;
    one seed prints no standard deviation ("–", not a made-up 0.00) and plots hollow."""
    from kwspot.experiments.table import markdown, plot_curves, summarize

    results = tmp_path / "results"
    results.mkdir()
    epochs = recipe_for("res8-narrow").epochs
    (results / "res8-narrow-seed0.json").write_text(
        json.dumps(_record("res8-narrow", 0, epochs, 0.7)))
    for seed, accuracy in ((0, 0.8), (1, 0.9)):
        (results / f"ds-cnn-s-seed{seed}.json").write_text(
            json.dumps(_record("ds-cnn-s", seed, recipe_for("ds-cnn-s").epochs, accuracy)))
    cfg = TableConfig(prepared=str(tmp_path), results_dir=str(results),
                      models=("ds-cnn-s", "res8-narrow"), seeds=(0, 1))
    rows = {r["model"]: r for r in summarize(cfg)}
    assert rows["res8-narrow"]["accuracy_std"] is None and rows["res8-narrow"]["seeds"] == 1
    assert rows["ds-cnn-s"]["accuracy_std"] == pytest.approx(7.07, abs=0.01)
    table = markdown(list(rows.values()), None)
    assert "| res8-narrow | 1 | 70.00 ± – |" in table and "| ds-cnn-s | 2 | 85.00 ± 7.07 |" in table
    plot_curves(cfg, ["ds-cnn-s", "res8-narrow"], tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0
    (results / "res8-narrow-seed0.json").write_text(
        json.dumps(_record("res8-narrow", 0, 30.01, 0.5)))
    with pytest.raises(KwspotError, match=r"trained for 30\.01 epochs.*res8-narrow-e30-seed0"):
        summarize(cfg)
    (results / "res8-narrow-seed0.json").write_text(
        json.dumps(_record("res8-narrow", 0, 12.5, 0.5)))
    with pytest.raises(KwspotError, match=r"res8-narrow-e12\.5-seed0\.json"):
        summarize(cfg)
    record = _record("res8-narrow", 0, epochs, 0.5)
    del record["steps"]  # fails closed, not open
    (results / "res8-narrow-seed0.json").write_text(json.dumps(record))
    with pytest.raises(KwspotError, match="no epochs and steps recorded"):
        summarize(cfg)
