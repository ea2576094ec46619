"""The typed run record (metrics.json) and the package's settings in config.json: one owner each, old files load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from transformers import BertConfig

from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.record import EffectiveBatchSize, Hyperparameters, Precision, RunRecord
from nlp_transfer.outputs import METRICS_FILE
from nlp_transfer.settings import PACKAGE_CONFIG_KEY, PackageSettings
from nlp_transfer.version import __version__

# metrics.json as version 0.1.0 wrote it before the record was typed (a LoRA run on the demo data).
OLD_METRICS = Path(__file__).resolve().parents[1] / "fixtures" / "metrics_v0.1.0.json"


def old_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "old-run"
    folder.mkdir()
    shutil.copy(OLD_METRICS, folder / METRICS_FILE)
    return folder


def test_a_metrics_json_written_before_the_typed_record_loads_with_its_values(tmp_path: Path) -> None:
    record = RunRecord.load(old_folder(tmp_path))
    assert (record.task, record.strategy, record.primary_metric) == ("single_label", "lora", "accuracy")
    assert record.precision == Precision(used="fp32", asked="fp32")
    assert record.effective_batch_size == EffectiveBatchSize(
        per_device=8, processes=1, gradient_accumulation_steps=1, total=8
    )
    assert record.hyperparameters.learning_rate == 0.0005 and record.hyperparameters.optim == "adamw_torch_fused"
    assert (record.trainable_parameters, record.total_parameters) == (74883, 22789254)
    assert record.adapter is True and record.test is None and record.dataset is None
    assert record.primary_value() == pytest.approx(0.37777777777777777)
    assert record.labels == ["billing", "delivery", "technical"]


def test_the_record_writes_back_exactly_the_json_it_read(tmp_path: Path) -> None:
    original = json.loads(OLD_METRICS.read_text(encoding="utf-8"))
    record = RunRecord.from_dict(original)
    assert record.to_dict() == original
    assert list(record.to_dict()) == list(original), "the keys in the order users have seen them"
    path = record.save(tmp_path)
    assert path.read_text(encoding="utf-8") == OLD_METRICS.read_text(encoding="utf-8")


def test_an_older_file_without_the_later_fields_gets_their_defaults() -> None:
    original = json.loads(OLD_METRICS.read_text(encoding="utf-8"))
    for later in ("primary_metric_reason", "reported_metrics", "plots", "reload_check", "hyperparameters", "precision"):
        del original[later]
    original["an_unknown_future_field"] = 1
    record = RunRecord.from_dict(original)
    assert record.primary_metric_reason is None and record.reported_metrics == [] and record.plots is None
    assert record.hyperparameters == Hyperparameters() and record.precision == Precision()
    assert "an_unknown_future_field" not in record.to_dict()


def test_split_results_leave_out_timings_and_count_the_loss_only_as_primary() -> None:
    record = RunRecord(
        task="single_label",
        strategy="full",
        primary_metric="accuracy",
        eval={"accuracy": 0.5, "loss": 0.7, "runtime": 1.0, "per_class": {}, "ece": float("nan"), "num_examples": 4},
        test={"accuracy": 0.25},
    )
    assert record.results("eval") == {"accuracy": 0.5}
    assert record.results("test") == {"accuracy": 0.25}
    assert list(record.evaluated_splits) == ["validation", "test"] and record.detail_split == "test"
    by_loss = RunRecord(task="single_label", strategy="full", primary_metric="loss", eval={"loss": 0.7})
    assert by_loss.results("eval") == {"loss": 0.7} and by_loss.primary_value() == 0.7
    assert by_loss.primary_value("test") is None and by_loss.detail_split == "eval"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("{not json", "could not be read as JSON"),
        ("[1, 2]", "holds a list, not the record of a run"),
        (
            '{"task": "single_label"}',
            "is not the metrics.json of an nlp-transfer run: it has no strategy, primary_metric",
        ),
    ],
)
def test_a_file_that_is_no_record_is_one_clear_error(tmp_path: Path, content: str | None, message: str) -> None:
    if content is not None:
        (tmp_path / METRICS_FILE).write_text(content, encoding="utf-8")
    with pytest.raises(UserInputError, match=message) as raised:
        RunRecord.load(tmp_path)
    assert str(tmp_path / METRICS_FILE) in str(raised.value)


def test_package_settings_round_trip_through_config_json(tmp_path: Path) -> None:
    config = BertConfig(num_labels=2)
    PackageSettings(max_length=64, primary_metric="mcc", label_separator=";", thresholds={"yes": 0.3}).write(config)
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))[PACKAGE_CONFIG_KEY]
    assert saved == {
        "version": __version__,
        "max_length": 64,
        "primary_metric": "mcc",
        "label_separator": ";",
        "thresholds": {"yes": 0.3},
    }
    reloaded = PackageSettings.read(BertConfig.from_pretrained(tmp_path))
    assert reloaded == PackageSettings(
        max_length=64, primary_metric="mcc", label_separator=";", thresholds={"yes": 0.3}
    )


def test_settings_without_thresholds_leave_the_key_out_and_foreign_configs_read_as_empty() -> None:
    config = BertConfig()
    PackageSettings(max_length=128).write(config)
    assert "thresholds" not in getattr(config, PACKAGE_CONFIG_KEY)
    foreign = PackageSettings.read(BertConfig())
    assert foreign == PackageSettings(version=None)
    older = BertConfig()
    setattr(older, PACKAGE_CONFIG_KEY, {"version": "0.0.9", "max_length": 32, "removed_setting": True})
    assert PackageSettings.read(older) == PackageSettings(version="0.0.9", max_length=32)
