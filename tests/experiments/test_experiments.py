"""`compare`: grid expansion, stratified sizes on one validation set, resume after a kill, failed cells, tables."""

from __future__ import annotations

import csv
import json
import logging
import statistics
from pathlib import Path
from typing import Any

import pytest
from conftest import sentiment_rows, write_csv

from nlp_transfer.cli.app import main
from nlp_transfer.config.data import DataArguments
from nlp_transfer.config.run import RunConfig
from nlp_transfer.data.prepare import load_data
from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.record import RunRecord
from nlp_transfer.experiments.grid import expand_grid, load_grid
from nlp_transfer.experiments.report import aggregate, report_grid, write_report
from nlp_transfer.experiments.runner import run_grid

FAST = {"disable_tqdm": True, "learning_rate": 1e-3, "num_train_epochs": 1}


def _grid(tmp_path: Path, **spec: Any):
    return expand_grid({"output_dir": str(tmp_path / "grid"), **spec})


def _unbalanced_file(tmp_path: Path, majority: int = 30, minority: int = 10) -> Path:
    rows = [{"text": f"common case number {i}", "label": "common"} for i in range(majority)]
    rows += [{"text": f"rare case number {i}", "label": "rare"} for i in range(minority)]
    return write_csv(tmp_path / "unbalanced.csv", rows)


# ------------------------------------------------------------------------------------------ expansion


def test_grid_has_one_cell_per_strategy_size_seed_and_axis_value(tmp_path: Path) -> None:
    grid = _grid(
        tmp_path,
        strategies=["full", {"strategy": "lora", "lora_r": 4, "name": "lora-r4"}],
        train_sizes=[16, "all"],
        seeds=[0, 1],
        learning_rate=[1e-4, 1e-3],
        num_train_epochs=2,
    )
    assert len(grid.cells) == 2 * 2 * 2 * 2
    assert grid.axis_names == ["learning_rate"]
    assert len({cell.key for cell in grid.cells}) == len(grid.cells)
    lora = [cell for cell in grid.cells if cell.strategy == "lora-r4"]
    assert {cell.options["lora_r"] for cell in lora} == {4}
    assert all("lora_r" not in cell.options for cell in grid.cells if cell.strategy == "full")
    sized = next(cell for cell in grid.cells if cell.size == 16)
    assert sized.options["max_train_samples"] == 16 and sized.options["train_sample"] == "stratified"
    whole = next(cell for cell in grid.cells if cell.size is None)
    assert "max_train_samples" not in whole.options and whole.coordinates()["train_size"] == "all"
    assert {cell.options["split_seed"] for cell in grid.cells} == {42}
    assert {cell.options["learning_rate"] for cell in grid.cells} == {1e-4, 1e-3}
    assert {cell.options["num_train_epochs"] for cell in grid.cells} == {2}


def test_a_strategy_entry_may_have_sizes_of_its_own(tmp_path: Path) -> None:
    grid = _grid(
        tmp_path,
        strategies=["full", {"strategy": "scratch", "train_sizes": [16, 5000, "all"]}],
        train_sizes=[16, 64],
        seeds=[0],
    )
    sizes = {name: [cell.size for cell in grid.cells if cell.strategy == name] for name in ("full", "scratch")}
    assert sizes == {"full": [16, 64], "scratch": [16, 5000, None]}
    assert all("train_sizes" not in cell.options for cell in grid.cells)
    with pytest.raises(UserInputError, match="'train_sizes' in the 'scratch' entry of the grid holds positive"):
        _grid(tmp_path, strategies=[{"strategy": "scratch", "train_sizes": [-1]}])


def test_a_list_option_is_an_axis_only_as_a_list_of_lists(tmp_path: Path) -> None:
    one_list = _grid(tmp_path, label_names=["labels"], seeds=[0])
    assert one_list.axis_names == [] and one_list.cells[0].options["label_names"] == ["labels"]
    two_lists = _grid(tmp_path, label_names=[["labels"], ["label"]], seeds=[0])
    assert two_lists.axis_names == ["label_names"] and len(two_lists.cells) == 2
    reporting = _grid(tmp_path, report_to=["tensorboard", "codecarbon"], seeds=[0])
    assert reporting.axis_names == [] and len(reporting.cells) == 1
    models = _grid(tmp_path, model=["minilm", str(tmp_path)], seeds=[0])
    assert "_model=minilm_" in models.cells[0].key and f"_model={tmp_path.name}_" in models.cells[1].key
    metric_sets = _grid(tmp_path, metrics=["accuracy", "accuracy,macro_f1"], seeds=[0])
    assert [cell.options["metrics"] for cell in metric_sets.cells] == ["accuracy", "accuracy,macro_f1"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"output_dir": None}, "needs an output_dir"),
        ({"train_sizes": [16, 0]}, "'train_sizes' in the grid holds positive numbers or 'all', not 0"),
        ({"seeds": [0, 0]}, "repeats a seed"),
        ({"seed": 3}, "sets seed: each cell sets these itself"),
        ({"strategies": ["full", {"strategy": "full", "learning_rate": 1e-4}]}, "names full twice"),
        ({"strategies": [{"lora_r": 4}]}, "lists strategy names or mappings"),
        ({"train_sizes": [16, 16]}, "makes the cell full_n16_s0 more than once"),
        ({"strategies": ["a b", "a-b"]}, "more than once"),
        ({"strategies": []}, "has no cells"),
        ({"push_to_hub": True, "hub_model_id": "me/x"}, "sets hub_model_id, push_to_hub: a grid trains many models"),
        ({"strategies": [{"strategy": "full", "name": "scratch"}]}, "names a full entry 'scratch'"),
        (
            {"strategies": [{"strategy": "full", "learning_rate": 1e-3}], "learning_rate": [1e-4, 1e-5]},
            "gives learning_rate both as an axis and inside a strategy entry",
        ),
        ({"validation_fraction": [0.1, 1.5]}, "cell full_nall_s0_validation_fraction=1.5_.*must be between 0 and 1"),
    ],
)
def test_bad_grids_are_refused_before_anything_runs(tmp_path: Path, spec: dict[str, Any], message: str) -> None:
    with pytest.raises(UserInputError, match=message.replace("(", r"\(")):
        expand_grid({"output_dir": str(tmp_path / "grid"), **spec})
    assert not (tmp_path / "grid").exists()


# ------------------------------------------------------------------------- sizes and the validation set


def test_stratified_draw_keeps_each_labels_share_and_depends_on_the_seed(tmp_path: Path) -> None:
    source = _unbalanced_file(tmp_path)
    args = dict(train_file=str(source), validation_file=str(source), max_train_samples=8, train_sample="stratified")
    first = load_data(DataArguments(**args), seed=0).splits["train"]
    again = load_data(DataArguments(**args), seed=0).splits["train"]
    other = load_data(DataArguments(**args), seed=1).splits["train"]
    names = load_data(DataArguments(**args), seed=0).schema.names
    counts = {name: [names[label] for label in first["labels"]].count(name) for name in names}
    assert counts == {"common": 6, "rare": 2}
    assert first["text"] == again["text"] and first["text"] != other["text"]


def test_a_stratified_draw_needs_a_row_per_label(tmp_path: Path) -> None:
    source = _unbalanced_file(tmp_path)
    args = DataArguments(
        train_file=str(source), validation_file=str(source), max_train_samples=1, train_sample="stratified"
    )
    with pytest.raises(UserInputError, match="fewer than the 2 labels"):
        load_data(args, seed=0)


def test_split_seed_fixes_the_carved_validation_set_across_run_seeds(tmp_path: Path) -> None:
    args = DataArguments(train_file=str(_unbalanced_file(tmp_path)), split_seed=7, max_train_samples=10)
    validations = [load_data(args, seed=seed).splits["validation"]["text"] for seed in (0, 1, 2)]
    trains = [load_data(args, seed=seed).splits["train"]["text"] for seed in (0, 1)]
    assert validations[0] == validations[1] == validations[2]
    assert trains[0] != trains[1]
    assert not set(validations[0]) & set(trains[0])
    source = str(_unbalanced_file(tmp_path))
    capped = DataArguments(train_file=source, validation_file=source, max_eval_samples=5, split_seed=3)
    capped_validations = [load_data(capped, seed=seed).splits["validation"]["text"] for seed in (0, 1)]
    assert capped_validations[0] == capped_validations[1] and len(capped_validations[0]) == 5
    unfixed = DataArguments(train_file=str(_unbalanced_file(tmp_path)))
    assert (
        load_data(unfixed, seed=0).splits["validation"]["text"]
        != load_data(unfixed, seed=1).splits["validation"]["text"]
    )


# ------------------------------------------------------------------------------------ running a grid


class FakeTraining:
    """Stands in for fine_tune: writes a metrics.json whose accuracy is seed / 10; can fail or be 'killed'."""

    def __init__(self, fail_seed: int | None = None, kill_after: int | None = None) -> None:
        self.calls: list[int] = []
        self.resumed: list[bool] = []
        self.fail_seed, self.kill_after = fail_seed, kill_after

    def __call__(self, config: RunConfig) -> None:
        seed = config.training.seed
        self.resumed.append(config.training.resume)
        if self.kill_after is not None and len(self.calls) == self.kill_after:
            raise KeyboardInterrupt
        self.calls.append(seed)
        if seed == self.fail_seed:
            raise RuntimeError("out of memory")
        folder = Path(config.training.output_dir)
        folder.mkdir(parents=True)
        RunRecord(
            task="single_label",
            strategy=config.strategy.strategy,
            primary_metric="accuracy",
            eval={"accuracy": seed / 10, "loss": 1.0, "runtime": 2.0},
            trainable_parameters=100,
            total_parameters=1000,
            optimizer_steps=10 * (seed + 1),
            num_examples={"train": config.data.max_train_samples or 0},
        ).save(folder)


def test_a_killed_grid_resumes_without_retraining_finished_cells(tmp_path: Path) -> None:
    grid = _grid(tmp_path, train_sizes=[8], seeds=[0, 1, 2])
    with pytest.raises(KeyboardInterrupt):
        run_grid(grid, train=FakeTraining(kill_after=1), progress=False)
    assert len((grid.folder / "runs.jsonl").read_text().splitlines()) == 1

    again = FakeTraining()
    outcome = run_grid(grid, train=again, progress=False)
    assert again.calls == [1, 2]
    assert outcome.skipped == ["full_n8_s0"] and outcome.trained == ["full_n8_s1", "full_n8_s2"]
    assert [row["seed"] for row in outcome.rows] == [0, 1, 2]
    assert not list(grid.folder.glob("cells/*/run")), "the model folders go unless keep_models is set"
    assert json.loads((grid.folder / "cells" / "full_n8_s2" / "metrics.json").read_text())["eval"]["accuracy"] == 0.2

    third = FakeTraining()
    assert run_grid(grid, train=third, progress=False).trained == [] and third.calls == []
    # A cell killed mid-training continues from its own last checkpoint (fine_tune's --resume), yet the option
    # is not part of the cell: its fingerprint, and so the resume check, stay as they were.
    assert again.resumed == [True, True]
    assert all("resume" not in cell.options for cell in grid.cells)


def test_dry_run_lists_the_cells_and_trains_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    grid = _grid(tmp_path, train_sizes=[8], seeds=[0, 1])
    run_grid(_grid(tmp_path, train_sizes=[8], seeds=[0]), train=FakeTraining(), progress=False)
    config = tmp_path / "grid.json"
    config.write_text(json.dumps({"output_dir": str(grid.folder), "train_sizes": [8], "seeds": [0, 1]}))
    assert main(["compare", "--config", str(config), "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "finished  full_n8_s0",
        "to train  full_n8_s1",
        f"2 cells, 1 finished, into {grid.folder}",
    ]
    assert len((grid.folder / "runs.jsonl").read_text().splitlines()) == 1


def test_report_only_tabulates_the_finished_cells_and_trains_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    grid = _grid(tmp_path, train_sizes=[8], seeds=[0, 1, 2])
    config = tmp_path / "grid.json"
    config.write_text(json.dumps({"output_dir": str(grid.folder), "train_sizes": [8], "seeds": [0, 1, 2]}))
    assert main(["compare", "--config", str(config), "--report-only"]) == 2
    assert "has no finished cells of this grid yet" in " ".join(capsys.readouterr().err.split())

    with pytest.raises(KeyboardInterrupt):  # killed after two of the three seeds
        run_grid(grid, train=FakeTraining(kill_after=2), progress=False)
    assert not (grid.folder / "summary.csv").exists()
    assert main(["compare", "--config", str(config), "--report-only"]) == 0
    with open(grid.folder / "summary.csv", newline="", encoding="utf-8") as handle:
        (entry,) = list(csv.DictReader(handle))
    assert entry["seeds"] == "2" and float(entry["eval_accuracy_mean"]) == pytest.approx(0.05)  # seeds 0, 1
    assert len((grid.folder / "runs.jsonl").read_text().splitlines()) == 2


def test_a_grid_whose_options_changed_refuses_its_old_rows(tmp_path: Path) -> None:
    run_grid(_grid(tmp_path, seeds=[0], num_train_epochs=2), train=FakeTraining(), progress=False)
    changed = _grid(tmp_path, seeds=[0], num_train_epochs=3)
    with pytest.raises(UserInputError, match="options have changed since \\(full_nall_s0\\)"):
        run_grid(changed, train=FakeTraining(), progress=False)


def test_a_grid_with_a_seed_taken_out_keeps_resuming(tmp_path: Path) -> None:
    """The other cells' rows still count; the dropped cell's row stays in runs.jsonl, out of the tables."""
    run_grid(_grid(tmp_path, seeds=[0, 1]), train=FakeTraining(), progress=False)
    smaller = run_grid(_grid(tmp_path, seeds=[0]), train=FakeTraining(), progress=False)
    assert smaller.trained == [] and smaller.skipped == ["full_nall_s0"]
    assert [row["cell"] for row in smaller.rows] == ["full_nall_s0"]
    assert len((tmp_path / "grid" / "runs.jsonl").read_text().splitlines()) == 2


def test_a_cell_trained_twice_counts_as_one_seed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Two `compare` processes on one folder can both train a cell and append its row: the tables use the latest
    row once, or the seed would count twice and the spread shrink."""
    grid = _grid(tmp_path, train_sizes=[8], seeds=[0, 1])
    run_grid(grid, train=FakeTraining(), progress=False)
    runs = grid.folder / "runs.jsonl"
    first, second = runs.read_text().splitlines()
    again = {**json.loads(first), "eval_accuracy": 0.3}
    runs.write_text("\n".join([first, second, json.dumps(again)]) + "\n")

    with caplog.at_level(logging.WARNING, logger="nlp_transfer.experiments.results"):
        rows = report_grid(grid)
    assert [row["cell"] for row in rows] == ["full_n8_s0", "full_n8_s1"] and rows[0]["eval_accuracy"] == 0.3
    assert "more than one row for full_n8_s0 (trained more than once)" in caplog.text
    (entry,) = json.loads((grid.folder / "summary.json").read_text())
    assert entry["seeds"] == 2 and entry["eval_accuracy_mean"] == pytest.approx((0.3 + 0.1) / 2)


def test_seeds_trained_at_different_batch_sizes_are_flagged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A grid resumed after an upgrade whose recipe picks another batch size mixes two settings in one row."""
    rows = [
        {"cell": f"full_n16_s{seed}", "strategy": "full", "train_size": 16, "seed": seed, "batch_size": batch}
        | {"primary_metric": "accuracy", "eval_accuracy": 0.5}
        for seed, batch in ((0, 8), (1, 8), (2, 16))
    ]
    with caplog.at_level(logging.WARNING, logger="nlp_transfer.experiments.report"):
        write_report(tmp_path, rows[:2], [])
        assert "different batch sizes" not in caplog.text
        write_report(tmp_path, rows, [])
    assert "The seeds of full 16 trained at different batch sizes (8, 16)" in caplog.text
    caplog.clear()
    write_report(tmp_path, [*rows[:2], {**rows[2], "batch_size": None}], [])  # a row of a version before batch_size
    assert "different batch sizes" not in caplog.text


def test_a_row_cut_by_a_kill_does_not_swallow_the_next_one(tmp_path: Path) -> None:
    grid = _grid(tmp_path, seeds=[0, 1])
    grid.folder.mkdir(parents=True)
    (grid.folder / "runs.jsonl").write_text('{"cell": "full_nall_s0", "stra')
    outcome = run_grid(grid, train=FakeTraining(), progress=False)
    assert outcome.trained == ["full_nall_s0", "full_nall_s1"]
    assert [row["cell"] for row in run_grid(grid, train=FakeTraining(), progress=False).rows] == outcome.trained


def test_a_failed_cell_is_reported_the_grid_goes_on_and_a_rerun_retries_it(tmp_path: Path) -> None:
    grid = _grid(tmp_path, seeds=[0, 1, 2])
    outcome = run_grid(grid, train=FakeTraining(fail_seed=1), progress=False)
    assert outcome.failed == {"full_nall_s1": "RuntimeError: out of memory"}
    assert outcome.trained == ["full_nall_s0", "full_nall_s2"]
    failure = json.loads((grid.folder / "failed.jsonl").read_text())
    assert failure["cell"] == "full_nall_s1" and failure["error"] == "RuntimeError: out of memory"

    retry = FakeTraining()
    assert run_grid(grid, train=retry, progress=False).trained == ["full_nall_s1"] and retry.calls == [1]
    assert not (grid.folder / "failed.jsonl").exists(), "failed.jsonl lists the last run's failures only"


def test_summary_is_mean_and_sample_std_over_seeds() -> None:
    rows = [
        {"cell": "a", "strategy": "full", "train_size": 16, "seed": 0, "eval_accuracy": 0.5, "optimizer_steps": 10},
        {"cell": "b", "strategy": "full", "train_size": 16, "seed": 1, "eval_accuracy": 0.7, "optimizer_steps": 20},
        {"cell": "c", "strategy": "full", "train_size": 16, "seed": 2, "eval_accuracy": 0.9, "optimizer_steps": 30},
        {"cell": "d", "strategy": "lora", "train_size": 16, "seed": 0, "eval_accuracy": 0.6, "optimizer_steps": 10},
    ]
    full, lora = aggregate(rows, [])
    assert full["seeds"] == 3 and lora["seeds"] == 1
    assert full["eval_accuracy_mean"] == pytest.approx(statistics.mean([0.5, 0.7, 0.9]))
    assert full["eval_accuracy_std"] == pytest.approx(0.2)  # sample std (n-1) of 0.5, 0.7, 0.9
    assert full["optimizer_steps_mean"] == 20
    assert lora["eval_accuracy_std"] is None, "one seed has no spread to report"


def test_tables_hold_every_run_and_the_aggregate(tmp_path: Path) -> None:
    grid = _grid(tmp_path, strategies=["full", "freeze"], train_sizes=[8], seeds=[0, 1])
    outcome = run_grid(grid, train=FakeTraining(), progress=False)
    with open(grid.folder / "runs.csv", newline="") as handle:
        runs = list(csv.DictReader(handle))
    assert [(row["strategy"], row["seed"], row["eval_accuracy"]) for row in runs] == [
        ("full", "0", "0.0"),
        ("full", "1", "0.1"),
        ("freeze", "0", "0.0"),
        ("freeze", "1", "0.1"),
    ]
    assert "eval_runtime" not in runs[0], "timings of an evaluation are not metrics"
    summary = json.loads((grid.folder / "summary.json").read_text())
    assert [{name: entry[name] for name in plain} for entry, plain in zip(summary, aggregate(outcome.rows, []))] == (
        aggregate(outcome.rows, [])
    )
    assert summary[0]["data_reduction"] is None, "no scratch in this grid"
    assert {"metric_vs_size.png", "metric_vs_parameters.png"} <= {path.name for path in grid.folder.iterdir()}
    markdown = (grid.folder / "summary.md").read_text()
    assert "| full | 8 | 0.0500 +- 0.0707 |" in markdown
    assert write_report(grid.folder, outcome.rows, [])["summary.csv"].read_text().count("\n") == 3


# ------------------------------------------------------------------------------- end to end, via the CLI


def test_compare_trains_a_tiny_grid_through_the_cli(
    tmp_path: Path, tiny_checkpoint: Path, sentiment_files: dict[str, Path], capsys: pytest.CaptureFixture
) -> None:
    validation = write_csv(tmp_path / "validation.csv", sentiment_rows(12))  # 24 rows: enough for a temperature
    spec = {
        "model": str(tiny_checkpoint),
        "train_file": str(sentiment_files["train"]),
        "validation_file": str(validation),
        "strategies": ["full", {"strategy": "freeze", "train_top_layers": 0, "name": "probe"}, "scratch"],
        "train_sizes": [8],
        "seeds": [0, 1],
        **FAST,
    }
    config = tmp_path / "grid.yaml"
    config.write_text(json.dumps(spec))
    assert main(["compare", "--config", str(config), "--output-dir", str(tmp_path / "grid"), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "| strategy | train size | validation accuracy |" in printed
    runs = [json.loads(line) for line in (tmp_path / "grid" / "runs.jsonl").read_text().splitlines()]
    assert [(row["strategy"], row["seed"], row["train_rows"]) for row in runs] == [
        ("full", 0, 8),
        ("full", 1, 8),
        ("probe", 0, 8),
        ("probe", 1, 8),
        ("scratch", 0, 8),
        ("scratch", 1, 8),
    ]
    records = {row["cell"]: RunRecord.load(tmp_path / "grid" / "cells" / row["cell"]) for row in runs}
    for row in runs:
        assert row["eval_accuracy"] == records[row["cell"]].eval["accuracy"]
        # Each cell's calibrated ECE and log loss, and its raw model's beside them: which strategy calibrates.
        before = records[row["cell"]].calibration["eval"]["before"]
        assert row["eval_ece"] == records[row["cell"]].eval["ece"]
        assert (row["eval_ece_uncalibrated"], row["eval_log_loss_uncalibrated"]) == (before["ece"], before["log_loss"])
        assert row["optimizer_steps"] == records[row["cell"]].optimizer_steps > 0
        curve = records[row["cell"]].learning_curve
        assert curve and curve[-1]["step"] == row["optimizer_steps"]
        assert [point["step"] for point in curve] == sorted({point["step"] for point in curve})
    assert "| data reduction | steps to target | iteration reduction |" in printed
    assert "Recommendation per size:" in printed
    assert (tmp_path / "grid" / "learning_curves.png").stat().st_size > 0
    probe, full = records["probe_n8_s0"], records["full_n8_s0"]
    assert probe.trainable_parameters < full.trainable_parameters
    assert probe.num_examples["validation"] == full.num_examples["validation"] == 24


def test_the_ray_backend_gives_the_local_table(
    tmp_path: Path, tiny_checkpoint: Path, sentiment_files: dict[str, Path]
) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'nlp-transfer[ray]'); local backend only")
    spec = {
        "model": str(tiny_checkpoint),
        "train_file": str(sentiment_files["train"]),
        "validation_file": str(sentiment_files["validation"]),
        "train_sizes": [8],
        "seeds": [0, 1],
        **FAST,
    }
    local = run_grid(expand_grid({**spec, "output_dir": str(tmp_path / "local")}), progress=False)
    remote = run_grid(expand_grid({**spec, "output_dir": str(tmp_path / "ray")}), progress=False, backend="ray")
    assert remote.failed == {} and sorted(remote.trained) == sorted(local.trained) == ["full_n8_s0", "full_n8_s1"]
    by_cell = {row["cell"]: row for row in remote.rows}
    for row in local.rows:
        other = by_cell[row["cell"]]
        for column in ("eval_accuracy", "optimizer_steps", "trainable_parameters", "train_rows"):
            assert other[column] == row[column], column
    tables = [json.loads((tmp_path / name / "summary.json").read_text()) for name in ("local", "ray")]
    assert [entry["eval_accuracy_mean"] for entry in tables[0]] == [entry["eval_accuracy_mean"] for entry in tables[1]]


@pytest.mark.parametrize(
    ("name", "cells"), [("sst2", 66), ("sst2_batch_size", 6), ("sst2_scratch_longer", 1), ("sst2_scratch_lr", 1)]
)
def test_the_grids_benchmarks_cites_load(name: str, cells: int) -> None:
    # Loading reads no data: the paths are only resolved, so this holds where ../shared is absent too.
    grid = load_grid(Path(__file__).resolve().parents[2] / "configs" / "grids" / f"{name}.yaml")
    assert len(grid.cells) == cells
