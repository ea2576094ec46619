"""`nlp_transfer.tables`: the CLI's metric table and the scripts' Markdown tables, as exact text."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

from nlp_transfer.evaluation.record import RunRecord
from nlp_transfer.tables import markdown_table, metrics_table

ROOT = Path(__file__).resolve().parents[1]
V010_METRICS = Path(__file__).parent / "fixtures" / "metrics_v0.1.0.json"


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_folder(folder: Path, **changes: object) -> Path:
    """A run folder holding the v0.1.0 metrics.json fixture, with some fields changed."""
    folder.mkdir(parents=True)
    values = {**json.loads(V010_METRICS.read_text(encoding="utf-8")), **changes}
    (folder / "metrics.json").write_text(json.dumps(values), encoding="utf-8")
    return folder


# ------------------------------------------------------------------------------------ markdown_table


def test_markdown_table() -> None:
    assert markdown_table(["a", "b c"], [["1", "2"], ["x", ""]]) == ("| a | b c |\n| --- | --- |\n| 1 | 2 |\n| x |  |")


def test_markdown_table_without_rows_is_the_header_and_rule() -> None:
    assert markdown_table(["only"], []) == "| only |\n| --- |"


# ------------------------------------------------------------------------------------- metrics_table


def test_metrics_table_primary_first_and_starred_one_column_per_split() -> None:
    splits = {
        "validation": {"loss": 0.7, "macro_f1": 0.25, "accuracy": 0.5, "runtime": 1.5, "eval_samples_per_second": 9.0},
        "test": {"accuracy": 0.75, "loss": 0.6, "num_examples": 4, "undefined": {"roc_auc": "one class"}},
    }
    assert metrics_table(splits, "accuracy") == (
        "metric      validation        test\n"
        "----------------------------------\n"
        "accuracy *      0.5000      0.7500\n"
        "loss            0.7000      0.6000\n"
        "macro_f1        0.2500         n/a\n"
        "roc_auc: undefined (one class)"
    )


def test_metrics_table_with_intervals_of_one_confidence() -> None:
    intervals = {"accuracy": {"lower": 0.25, "upper": 0.875, "confidence": 0.9}}
    assert metrics_table({"value": {"accuracy": 0.5, "f1": 0.125}}, "accuracy", intervals) == (
        "metric           value   90% interval\n"
        "-------------------------------------\n"
        "accuracy *      0.5000   [0.2500, 0.8750]\n"
        "f1              0.1250"
    )


def test_metrics_table_with_intervals_of_mixed_confidence() -> None:
    intervals = {
        "accuracy": {"lower": 0.25, "upper": 0.875, "confidence": 0.9},
        "f1": {"lower": 0.0, "upper": 0.5, "confidence": 0.5},
    }
    table = metrics_table({"value": {"accuracy": 0.5, "f1": 0.125}}, "accuracy", intervals)
    assert table.splitlines()[0] == "metric           value   interval"
    assert table.splitlines()[-1] == "f1              0.1250   [0.0000, 0.5000]"


def test_metrics_table_of_a_run_record() -> None:
    record = RunRecord.from_dict(json.loads(V010_METRICS.read_text(encoding="utf-8")))
    lines = metrics_table(record.evaluated_splits, record.primary_metric).splitlines()
    assert lines[0] == "metric                validation"
    assert lines[2] == "accuracy *                0.3778"
    assert all("runtime" not in line and "per_second" not in line for line in lines)


# ------------------------------------------------------------------------------ the scripts' tables


def test_benchmark_strategies_table(tmp_path: Path) -> None:
    script = _script("benchmark_strategies")
    folder = _run_folder(tmp_path / "lora")
    (folder / "peak_memory.json").write_text(json.dumps({"peak_rss_mib": 1234.56}))
    assert markdown_table(script._headers("accuracy"), [script._row("lora", folder)]) == (
        "| strategy | validation accuracy | trainable parameters | total parameters | learning rate "
        "| train time (s) | train samples/s | peak RSS (MiB) |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        "| lora | 0.3778 | 74,883 | 22,789,254 | 0.0005 | 3.4 | 11.9 | 1,235 |"
    )


def test_benchmark_imbalance_table(tmp_path: Path) -> None:
    script = _script("benchmark_imbalance")
    plain = RunRecord.load(_run_folder(tmp_path / "plain"))
    tuned = RunRecord.load(
        _run_folder(tmp_path / "tuned", test={"accuracy": 0.5}, decision_thresholds={"values": {"technical": 0.3}})
    )
    assert markdown_table(script.HEADERS, [script._row("plain", plain), script._row("tuned", tuned)]) == (
        "| variant | validation primary | test primary | minority recall | minority precision | minority F1 "
        "| balanced accuracy | macro-F1 | thresholds | train time (s) |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
        "| plain | accuracy 0.3778 | - | 0.900 | 0.346 | 0.500 | 0.3778 | 0.2833 | - | 3 |\n"
        '| tuned | accuracy 0.3778 | 0.5000 | 0.900 | 0.346 | 0.500 | 0.3778 | 0.2833 | {"technical": 0.3} | 3 |'
    )


def test_benchmark_strategies_passes_a_strategy_option_only_to_the_strategies_that_read_it() -> None:
    options_for = _script("benchmark_strategies").options_for
    given = ["--train-file", "x.csv", "--train-top-layers", "1", "--lora-r=16", "--use-dora", "--seed", "3"]
    assert options_for("full", given) == ["--train-file", "x.csv", "--seed", "3"]
    assert options_for("freeze", given) == ["--train-file", "x.csv", "--train-top-layers", "1", "--seed", "3"]
    assert options_for("lora", given) == ["--train-file", "x.csv", "--lora-r=16", "--use-dora", "--seed", "3"]
    assert options_for("hybrid", given) == given
