"""Calibrated scores, conformal prediction sets and abstention: the numbers, the folding, and whole runs.

The unit tests check the statistics against known answers (a temperature recovered from logits of known
temperature, quantile ranks, coverage on exchangeable synthetic data within binomial tolerance). The runs train
the session's tiny random BERT twice with the same seed, calibrated and not, so that the calibrated folder can be
checked against the raw one: same labels, logits divided by the recorded temperature, in every loader.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import sentiment_rows, write_csv
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_expit, softmax
from transformers import BertConfig, BertForSequenceClassification, RobertaConfig, RobertaForSequenceClassification

from nlp_transfer import RunConfig, UserInputError, fine_tune, load_classifier
from nlp_transfer.cli.app import main
from nlp_transfer.evaluation.calibration import MIN_PER_CLASS, fit_temperature, fold_temperature, output_layer
from nlp_transfer.evaluation.conformal import (
    conformal_quantiles,
    coverage_report,
    nonconformity,
    prediction_sets,
    resolve_level,
    risk_coverage,
)
from nlp_transfer.inference.folder_evaluation import evaluate_folder
from nlp_transfer.settings import PackageSettings

# ------------------------------------------------------------------------------------------ temperature


def _sampled_labels(probabilities: np.ndarray, seed: int) -> np.ndarray:
    """One label per row drawn from its probabilities: data on which these probabilities are calibrated."""
    draw = np.random.default_rng(seed).random((len(probabilities), 1))
    return (probabilities.cumsum(axis=1) < draw).sum(axis=1).clip(max=probabilities.shape[1] - 1)


@pytest.mark.parametrize("true_temperature", [0.5, 1.0, 2.83])
def test_the_fitted_temperature_recovers_the_one_the_logits_were_made_with(true_temperature: float) -> None:
    calibrated = np.random.default_rng(0).normal(0, 2.5, size=(20_000, 4))
    labels = _sampled_labels(softmax(calibrated, axis=1), seed=1)
    observed = calibrated * true_temperature  # over-confident by the factor the temperature undoes
    fitted = fit_temperature(lambda inverse: observed * inverse, labels, "single_label", 4)
    assert fitted.shape == (1,)
    assert fitted[0] == pytest.approx(true_temperature, rel=0.05)


def test_multi_label_fits_one_temperature_per_label_and_shares_one_where_a_label_is_rare() -> None:
    generator = np.random.default_rng(2)
    calibrated = generator.normal(0, 2.0, size=(8_000, 3))
    targets = (generator.random(calibrated.shape) < expit(calibrated)).astype(int)
    targets[:, 2] = 0
    targets[: MIN_PER_CLASS - 1, 2] = 1  # too few positives for a temperature of its own
    observed = calibrated * np.array([0.5, 3.0, 1.0])
    fitted = fit_temperature(lambda inverse: observed * inverse, targets, "multi_label", 3)
    assert fitted[0] == pytest.approx(0.5, rel=0.08)
    assert fitted[1] == pytest.approx(3.0, rel=0.08)
    # Label 2 takes the temperature that minimises the log loss of every label at once.
    signs = 2 * targets - 1
    shared = minimize_scalar(
        lambda inverse: -log_expit(signs * observed * inverse).mean(), bounds=(0.05, 20), method="bounded"
    )
    assert fitted[2] == pytest.approx(1 / shared.x, rel=1e-3)


def _tiny_bert(num_labels: int = 3) -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    config.num_labels = num_labels
    return BertForSequenceClassification(config).eval()


def _probe() -> dict[str, torch.Tensor]:
    return {
        "input_ids": torch.tensor([[1, 5, 7, 9, 2], [1, 4, 2, 0, 0]]),
        "attention_mask": torch.tensor([[1] * 5, [1, 1, 1, 0, 0]]),
    }


def test_folding_divides_the_logits_by_the_temperature_and_keeps_every_argmax() -> None:
    model = _tiny_bert()
    with torch.no_grad():
        before = model(**_probe()).logits
    name = fold_temperature(model, np.array([2.5]), _probe())
    with torch.no_grad():
        after = model(**_probe()).logits
    assert name == "classifier"
    torch.testing.assert_close(after, before / 2.5, atol=1e-6, rtol=1e-5)
    assert torch.equal(after.argmax(-1), before.argmax(-1))


def test_folding_per_label_temperatures_scales_each_output_by_its_own() -> None:
    model = _tiny_bert(num_labels=3)
    with torch.no_grad():
        before = model(**_probe()).logits
    fold_temperature(model, np.array([0.5, 2.0, 4.0]), _probe())
    with torch.no_grad():
        after = model(**_probe()).logits
    torch.testing.assert_close(after, before / torch.tensor([0.5, 2.0, 4.0]), atol=1e-6, rtol=1e-5)


def test_folding_finds_the_output_projection_of_a_two_layer_head_and_under_peft() -> None:
    from peft import LoraConfig, TaskType, get_peft_model

    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, num_labels=2
    )
    roberta = RobertaForSequenceClassification(config).eval()
    assert output_layer(roberta)[0] == "classifier.out_proj"  # not classifier.dense
    peft_model = get_peft_model(roberta, LoraConfig(task_type=TaskType.SEQ_CLS, target_modules=["query", "value"]))
    peft_model.eval()
    name, _ = output_layer(peft_model)
    assert name == "classifier.modules_to_save.default.out_proj"  # the trained copy, not the frozen original
    probe = {key: value for key, value in _probe().items()}
    with torch.no_grad():
        before = peft_model(**probe).logits
    fold_temperature(peft_model, np.array([3.0]), probe)
    with torch.no_grad():
        torch.testing.assert_close(peft_model(**probe).logits, before / 3.0, atol=1e-6, rtol=1e-5)


# -------------------------------------------------------------------------------------------- conformal


def test_the_quantile_is_the_ceil_of_n_plus_one_times_the_level_th_score() -> None:
    scores = np.arange(1, 20, dtype=float)[::-1]  # 19 scores, 1..19, in any order
    quantiles = conformal_quantiles(scores, levels=(0.5, 0.9, 0.95))
    assert quantiles == {"0.50": 10.0, "0.90": 18.0, "0.95": 19.0}  # ranks ceil(20 * level): 10, 18, 19
    assert conformal_quantiles(np.arange(8.0), levels=(0.9,)) == {"0.90": None}  # ceil(9 * 0.9) = 9 > 8 rows


def test_a_requested_coverage_is_served_by_the_saved_level_equal_to_it_or_the_next_one_up() -> None:
    saved = {"quantiles": {"0.80": 0.2, "0.90": 0.4, "0.91": 0.45}}
    assert resolve_level(0.9, saved, "x") == ("0.90", 0.4)
    assert resolve_level(0.905, saved, "x") == ("0.91", 0.45)
    with pytest.raises(UserInputError, match="highest coverage this folder can guarantee is 0.91"):
        resolve_level(0.95, saved, "x")
    with pytest.raises(UserInputError, match="between 0 and 1"):
        resolve_level(90, saved, "x")
    with pytest.raises(UserInputError, match="x holds no conformal quantiles.*Train it again"):
        resolve_level(0.9, None, "x")


@pytest.mark.parametrize("level", [0.8, 0.9])
def test_sets_cover_exchangeable_texts_at_the_level_within_binomial_tolerance(level: float) -> None:
    generator = np.random.default_rng(3)
    logits = generator.normal(0, 2.0, size=(22_000, 5))
    probabilities = softmax(logits * 1.7, axis=1)  # not calibrated: the guarantee needs no calibration
    labels = _sampled_labels(softmax(logits, axis=1), seed=4)
    held, new = slice(0, 2_000), slice(2_000, None)
    quantile = conformal_quantiles(nonconformity(probabilities[held], labels[held], "single_label"), (level,))
    report = coverage_report(probabilities[new], labels[new], "single_label", quantile[f"{level:.2f}"], "l")
    # The coverage given the held-out rows is Beta-distributed around the level (sd sqrt(a(1-a)/n)), and the new
    # rows add binomial noise: four standard deviations of both.
    spread = 4 * math.sqrt(level * (1 - level) * (1 / 2_000 + 1 / 20_000))
    assert level - spread <= report["coverage"] <= level + 1 / 2_001 + spread
    assert 1 <= report["mean_set_size"] <= 5


def test_regression_intervals_cover_at_the_level() -> None:
    generator = np.random.default_rng(5)
    predictions = generator.normal(0, 1, 12_000)
    targets = predictions + generator.standard_t(4, 12_000)
    quantile = conformal_quantiles(nonconformity(predictions[:2_000], targets[:2_000], "regression"), (0.9,))["0.90"]
    report = coverage_report(predictions[2_000:], targets[2_000:], "regression", quantile, "0.90")
    assert 0.9 - 0.03 <= report["coverage"] <= 0.9 + 0.03
    assert report["mean_interval_width"] == pytest.approx(2 * quantile)


def test_a_multi_label_set_covers_a_text_when_it_holds_all_its_labels() -> None:
    probabilities = np.array([[0.9, 0.6, 0.1], [0.9, 0.2, 0.1], [0.3, 0.3, 0.3]])
    truth = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 0]])
    assert nonconformity(probabilities, truth, "multi_label").tolist() == pytest.approx([0.4, 0.8, 0.0])
    assert prediction_sets(probabilities, 0.5, "multi_label").tolist() == [
        [True, True, False],
        [True, False, False],
        [False, False, False],
    ]
    assert prediction_sets(probabilities, None, "multi_label").all()  # too few rows: every label


def test_risk_coverage_answers_the_most_confident_texts_first() -> None:
    sureness = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6, 0.55, 0.52, 0.51, 0.5])
    correct = np.array([1, 1, 1, 1, 0, 1, 0, 1, 0, 0])
    report = risk_coverage(sureness, correct)
    assert report["accuracy_at"] == {"1.0": 0.6, "0.9": pytest.approx(6 / 9), "0.8": 0.75, "0.5": 0.8}
    assert report["confidence_at"] == {"1.0": 0.5, "0.9": 0.51, "0.8": 0.52, "0.5": 0.7}
    errors = 1 - np.cumsum(correct) / np.arange(1, 11)
    assert report["aurc"] == pytest.approx(errors.mean(), abs=1e-6)


# ------------------------------------------------------------------------------------------ whole runs

FAST = {"disable_tqdm": True, "learning_rate": 1e-3, "num_train_epochs": 2, "seed": 7}


def _train(checkpoint: Path, files: dict[str, Path], out: Path, **options: Any) -> Path:
    config = {
        "model": str(checkpoint),
        "train_file": str(files["train"]),
        "validation_file": str(files["validation"]),
        "test_file": str(files["test"]),
        "output_dir": str(out),
        **FAST,
        **options,
    }
    return fine_tune(RunConfig.from_dict(config)).output_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> dict[str, Any]:
    """The same run twice (same seed): calibrated (the default) and with --calibration none."""
    root = tmp_path_factory.mktemp("calibration")
    files = {
        "train": write_csv(root / "train.csv", sentiment_rows(16)),
        "validation": write_csv(root / "validation.csv", sentiment_rows(12)),
        "test": write_csv(root / "test.csv", sentiment_rows(6)),
    }
    calibrated = _train(tiny_checkpoint, files, root / "calibrated")
    raw = _train(tiny_checkpoint, files, root / "raw", calibration="none")
    texts = [row["text"] for row in sentiment_rows(6)] + ["a text unlike the training ones", "so-so"]
    return {"files": files, "calibrated": calibrated, "raw": raw, "texts": texts}


def _metrics(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "metrics.json").read_text(encoding="utf-8"))


def test_the_saved_model_gives_the_raw_logits_divided_by_the_recorded_temperature(runs: dict[str, Any]) -> None:
    record = _metrics(runs["calibrated"])["calibration"]
    temperature = record["temperature"]
    assert record["method"] == "temperature" and record["fitted_on"] == {"split": "validation", "rows": 24}
    calibrated, raw = load_classifier(runs["calibrated"], "cpu"), load_classifier(runs["raw"], "cpu")
    np.testing.assert_allclose(
        calibrated.logits(runs["texts"]), raw.logits(runs["texts"]) / temperature, rtol=1e-4, atol=1e-5
    )
    ours, theirs = calibrated.predict(runs["texts"]), raw.predict(runs["texts"])
    assert [p["label"] for p in ours] == [p["label"] for p in theirs]  # labels unchanged
    settings = PackageSettings.read(calibrated.model)
    assert settings.calibration["temperature"] == temperature and settings.calibration["folded_into"] == "classifier"
    assert PackageSettings.read(raw.model).calibration is None


def test_the_record_holds_the_figures_before_and_after_as_each_folder_scores_them(runs: dict[str, Any]) -> None:
    calibrated, raw = _metrics(runs["calibrated"]), _metrics(runs["raw"])
    assert "calibration" not in raw
    for split in ("eval", "test"):
        figures = calibrated["calibration"][split]
        for name in ("ece", "log_loss", "brier", "accuracy"):
            assert figures["before"][name] == pytest.approx(raw[split][name], abs=1e-5)  # the raw model's
            assert figures["after"][name] == pytest.approx(calibrated[split][name], abs=1e-5)  # the saved one's
        assert figures["before"]["accuracy"] == figures["after"]["accuracy"]
    # Temperature scaling minimises validation log loss, so it can only go down there.
    assert (
        calibrated["calibration"]["eval"]["after"]["log_loss"]
        <= calibrated["calibration"]["eval"]["before"]["log_loss"] + 1e-9
    )


def test_calibration_none_reproduces_the_raw_scores(
    runs: dict[str, Any], tiny_checkpoint: Path, tmp_path: Path
) -> None:
    """--calibration none gives what the package gave before calibration existed: the model's own softmax."""
    raw = load_classifier(runs["raw"], "cpu")
    logits = raw.logits(runs["texts"])
    scores = [p["scores"] for p in raw.predict(runs["texts"])]
    expected = softmax(logits.astype(np.float64), axis=1)
    for row, probabilities in zip(scores, expected):
        assert [row[label] for label in raw.labels] == pytest.approx(probabilities.tolist(), abs=1e-7)


def test_the_pipeline_on_the_folder_gives_the_calibrated_probabilities(runs: dict[str, Any]) -> None:
    from transformers import pipeline

    ours = load_classifier(runs["calibrated"], "cpu").predict(runs["texts"])
    theirs = pipeline("text-classification", model=str(runs["calibrated"]), device="cpu", top_k=None)(runs["texts"])
    for mine, full in zip(ours, theirs):
        for entry in full:
            assert mine["scores"][entry["label"]] == pytest.approx(entry["score"], abs=1e-5)


def test_conformal_quantiles_are_saved_and_predict_returns_sets_that_match_them(runs: dict[str, Any]) -> None:
    classifier = load_classifier(runs["calibrated"], "cpu")
    saved = classifier.conformal
    assert saved["rows"] == 24 and saved["score"] == "1 - p(true label)" and len(saved["quantiles"]) == 50
    quantile = saved["quantiles"]["0.80"]
    for prediction in classifier.predict(runs["texts"], coverage=0.8):
        expected = [label for label, p in prediction["scores"].items() if 1 - p <= quantile]
        assert sorted(prediction["label_set"]) == sorted(expected)
        assert prediction["set_size"] == len(expected) and prediction["coverage"] == 0.8
    record = _metrics(runs["calibrated"])["conformal"]
    assert record["quantiles"] == saved["quantiles"] and set(record["test"]) == {"0.8", "0.9"}


def test_min_confidence_abstains_below_the_bar_and_nowhere_else(runs: dict[str, Any]) -> None:
    classifier = load_classifier(runs["calibrated"], "cpu")
    plain = classifier.predict(runs["texts"])
    bar = float(np.median([p["score"] for p in plain]))
    for guess, marked in zip(plain, classifier.predict(runs["texts"], min_confidence=bar)):
        assert marked["abstained"] is (guess["score"] < bar)
        assert marked["label"] == (None if marked["abstained"] else guess["label"])
        assert marked["confidence"] == guess["score"]


def test_evaluate_reports_coverage_and_risk_coverage_as_computed_from_the_predictions(runs: dict[str, Any]) -> None:
    file = str(runs["files"]["test"])
    result = evaluate_folder(runs["calibrated"], file, coverage=0.8)
    predictions = load_classifier(runs["calibrated"], "cpu").predict(
        [row["text"] for row in sentiment_rows(6)], coverage=0.8
    )
    truth = [row["label"] for row in sentiment_rows(6)]
    covered = [label in prediction["label_set"] for label, prediction in zip(truth, predictions)]
    assert result.conformal["coverage"] == pytest.approx(np.mean(covered))
    assert result.conformal["mean_set_size"] == pytest.approx(np.mean([p["set_size"] for p in predictions]))
    assert result.abstention["accuracy_at"]["1.0"] == pytest.approx(result.report.metrics["accuracy"])
    report = result.to_dict()
    assert report["conformal"]["coverage_target"] == 0.8 and "abstention" in report


def test_the_cli_prints_the_abstention_table_and_writes_sets(runs: dict[str, Any], capsys, tmp_path: Path) -> None:
    assert (
        main(
            ["evaluate", "--model", str(runs["calibrated"]), "--file", str(runs["files"]["test"]), "--coverage", "0.9"]
        )
        == 0
    )
    shown = capsys.readouterr().out
    assert "answered  accuracy  predict --min-confidence" in shown and "Coverage 0.9:" in shown
    output = tmp_path / "predictions.jsonl"
    arguments = ["predict", "--model", str(runs["calibrated"]), "--text", "great product", "--coverage", "0.9"]
    assert main([*arguments, "--min-confidence", "0.99", "--output", str(output)]) == 0
    record = json.loads(output.read_text(encoding="utf-8"))
    assert {"label_set", "set_size", "coverage", "confidence", "abstained"} <= set(record)


def test_a_folder_from_before_calibration_predicts_as_before_and_explains_coverage(
    runs: dict[str, Any], tmp_path: Path
) -> None:
    """A folder written before this change: no calibration, no conformal quantiles in its config.json."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(runs["raw"], old)
    config = json.loads((old / "config.json").read_text(encoding="utf-8"))
    del config["nlp_transfer"]["conformal"]
    (old / "config.json").write_text(json.dumps(config), encoding="utf-8")
    before = load_classifier(runs["raw"], "cpu").predict(runs["texts"])
    assert load_classifier(old, "cpu").predict(runs["texts"]) == before
    with pytest.raises(UserInputError, match="holds no conformal quantiles: it was trained before"):
        load_classifier(old, "cpu").predict(runs["texts"], coverage=0.9)


def test_tuned_thresholds_are_tuned_on_the_calibrated_scores(
    tiny_checkpoint: Path, runs: dict[str, Any], tmp_path: Path
) -> None:
    folder = _train(tiny_checkpoint, runs["files"], tmp_path / "tuned", tune_threshold=True)
    thresholds = _metrics(folder)["decision_thresholds"]
    classifier = load_classifier(folder, "cpu")
    validation = [row["text"] for row in sentiment_rows(12)]
    truth = [row["label"] for row in sentiment_rows(12)]
    decided = [p["label"] for p in classifier.predict(validation)]
    # The saved (calibrated) model's probabilities with the saved threshold reproduce the tuned validation figure.
    assert thresholds["metric"] == "accuracy"
    assert np.mean([d == t for d, t in zip(decided, truth)]) == pytest.approx(thresholds["validation_after"])


def test_regression_gets_intervals_and_refuses_min_confidence(tiny_checkpoint: Path, tmp_path: Path) -> None:
    rows = [{"text": r["text"], "label": 4.5 if r["label"] == "positive" else 0.5} for r in sentiment_rows(16)]
    files = {
        "train": write_csv(tmp_path / "train.csv", rows),
        "validation": write_csv(tmp_path / "validation.csv", rows[:20]),
        "test": write_csv(tmp_path / "test.csv", rows[:8]),
    }
    folder = _train(tiny_checkpoint, files, tmp_path / "out")
    metrics = _metrics(folder)
    assert "calibration" not in metrics and "abstention" not in metrics
    quantile = metrics["conformal"]["quantiles"]["0.90"]
    assert metrics["conformal"]["test"]["0.9"]["mean_interval_width"] == pytest.approx(2 * quantile)
    classifier = load_classifier(folder, "cpu")
    for prediction in classifier.predict(["great product", "awful"], coverage=0.9):
        low, high = prediction["interval"]
        assert low == pytest.approx(prediction["score"] - quantile) and high == pytest.approx(
            prediction["score"] + quantile
        )
    with pytest.raises(UserInputError, match="--min-confidence needs class probabilities; this is a regression"):
        classifier.predict(["great product"], min_confidence=0.5)


def test_separable_validation_rows_keep_the_raw_scores(caplog: pytest.LogCaptureFixture) -> None:
    """Every row right with a wide margin: the log loss falls as T -> 0, which says nothing about new texts."""
    logits = np.array([[5.0, -5.0], [-4.0, 4.0]] * 10)
    with caplog.at_level("WARNING", logger="nlp_transfer.evaluation.calibration"):
        fitted = fit_temperature(lambda inverse: logits * inverse, np.array([0, 1] * 10), "single_label", 2)
    assert fitted.tolist() == [1.0]
    assert "no temperature can be estimated from them; the raw scores are kept (T = 1)" in caplog.text


def test_an_unknown_calibration_method_is_refused() -> None:
    with pytest.raises(UserInputError, match=r"'calibration' .* invalid value 'platt'; choose one of \['temperature'"):
        RunConfig.from_dict({"output_dir": "runs/x", "calibration": "platt"}).validate()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["predict", "--text", "hi", "--coverage", "90"], "--coverage must be between 0 and 1 .e.g. 0.9 for sets"),
        (["predict", "--text", "hi", "--coverage", "nan"], "--coverage must be between 0 and 1"),
        (["predict", "--text", "hi", "--min-confidence", "1.5"], "--min-confidence must be between 0 and 1"),
        (["evaluate", "--file", "x.csv", "--coverage", "1"], "--coverage must be between 0 and 1"),
    ],
)
def test_a_share_out_of_range_is_refused_before_the_model_loads(
    arguments: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main([arguments[0], "--model", str(tmp_path / "no-such-folder"), *arguments[1:]]) == 2
    error = capsys.readouterr().err
    assert re.search(message, error) and "no-such-folder" not in error  # before the folder is even looked at


# ------------------------------------------------------------------------------ nlp-transfer calibrate


def _file_digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_calibrate_writes_a_new_folder_whose_logits_are_the_old_ones_over_the_new_temperature(
    runs: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    source = runs["calibrated"]
    weights = _file_digest(source / "model.safetensors")
    out = tmp_path / "recalibrated"
    fit_on = str(runs["files"]["validation"])
    assert main(["calibrate", "--model", str(source), "--file", fit_on, "--output-dir", str(out)]) == 0
    assert f"Calibrated on 24 rows of {fit_on}" in capsys.readouterr().out
    assert _file_digest(source / "model.safetensors") == weights  # the original folder is not changed
    report = json.loads((out / "calibration_report.json").read_text(encoding="utf-8"))
    previous = _metrics(source)["calibration"]["temperature"]
    assert report["previous_temperature"] == previous and report["rows"] == 24
    old, new = load_classifier(source, "cpu"), load_classifier(out, "cpu")
    np.testing.assert_allclose(
        new.logits(runs["texts"]), old.logits(runs["texts"]) / report["temperature"], rtol=1e-4, atol=1e-5
    )
    assert [p["label"] for p in new.predict(runs["texts"])] == [p["label"] for p in old.predict(runs["texts"])]
    settings = PackageSettings.read(new.model)
    assert settings.calibration["temperature"] == pytest.approx(previous * report["temperature"], rel=1e-5)
    assert settings.conformal["rows"] == 24 and settings.conformal["fitted_on"] == fit_on
    assert {"README.md", "metrics.json", "tokenizer.json", ".nlp-transfer.json"} <= {p.name for p in out.iterdir()}


def test_calibrate_gives_a_folder_from_before_calibration_its_quantiles_and_none_keeps_its_scores(
    runs: dict[str, Any], tmp_path: Path
) -> None:
    import shutil

    old = tmp_path / "old"
    shutil.copytree(runs["raw"], old, ignore=shutil.ignore_patterns(".nlp-transfer.json"))
    config = json.loads((old / "config.json").read_text(encoding="utf-8"))
    del config["nlp_transfer"]["conformal"]
    (old / "config.json").write_text(json.dumps(config), encoding="utf-8")
    out = tmp_path / "with-sets"
    arguments = ["calibrate", "--model", str(old), "--file", str(runs["files"]["validation"]), "--output-dir", str(out)]
    assert main([*arguments, "--calibration", "none"]) == 0
    before, after = load_classifier(old, "cpu"), load_classifier(out, "cpu")
    np.testing.assert_array_equal(after.logits(runs["texts"]), before.logits(runs["texts"]))
    assert PackageSettings.read(after.model).calibration is None
    assert all("label_set" in p for p in after.predict(runs["texts"], coverage=0.8))


def test_calibrate_refuses_too_few_rows_and_an_output_folder_holding_its_inputs(
    runs: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    few = write_csv(tmp_path / "few.csv", sentiment_rows(5))
    arguments = ["calibrate", "--model", str(runs["calibrated"]), "--output-dir", str(tmp_path / "out")]
    assert main([*arguments, "--file", str(few)]) == 2
    assert "has 10 labelled rows; calibrating needs at least 20" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "out").exists()
    inside = write_csv(tmp_path / "here" / "fit.csv", sentiment_rows(12))
    command = ["calibrate", "--model", str(runs["calibrated"]), "--file", str(inside), "--output-dir"]
    assert main([*command, str(tmp_path / "here"), "--overwrite-output-dir"]) == 2
    error = " ".join(capsys.readouterr().err.split())
    assert "--file" in error and str(inside) in error and inside.is_file()


def test_calibrate_a_lora_folder_keeps_the_adapter_and_its_merged_copy_in_step(
    tiny_checkpoint: Path, runs: dict[str, Any], tmp_path: Path
) -> None:
    trained = _train(tiny_checkpoint, runs["files"], tmp_path / "lora", strategy="lora", merge_lora=True)
    out = tmp_path / "lora-recalibrated"
    fit_on = str(runs["files"]["validation"])
    assert main(["calibrate", "--model", str(trained), "--file", fit_on, "--output-dir", str(out)]) == 0
    report = json.loads((out / "calibration_report.json").read_text(encoding="utf-8"))
    assert (out / "adapter_config.json").is_file() and (out / "merged" / "model.safetensors").is_file()
    old, new, merged = (load_classifier(path, "cpu") for path in (trained, out, out / "merged"))
    expected = old.logits(runs["texts"]) / report["temperature"]
    np.testing.assert_allclose(new.logits(runs["texts"]), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(merged.logits(runs["texts"]), expected, rtol=1e-4, atol=1e-5)


def test_too_few_validation_rows_fit_no_temperature(
    tiny_checkpoint: Path, runs: dict[str, Any], tmp_path: Path
) -> None:
    files = {**runs["files"], "validation": write_csv(tmp_path / "few.csv", sentiment_rows(9))}  # 18 rows
    folder = _train(tiny_checkpoint, files, tmp_path / "out")
    assert _metrics(folder)["calibration"] == {
        "method": "none",
        "reason": "18 validation rows are too few to fit a temperature (20 needed): scores left raw",
    }
    assert PackageSettings.read(load_classifier(folder, "cpu").model).calibration is None


def test_rows_all_decided_right_fit_no_temperature_however_near_the_bound_the_search_stops() -> None:
    """7 rows of AG News, all right but one barely, asked for T = 0.07: separable rows say nothing about T."""
    logits = np.array([[3.0, 0, 0, 0], [0, 2.5, 0, 0], [0, 0, 0.2, 0.1], [0, 0, 0, 4.0]] * 2)[:7]
    labels = np.array([0, 1, 2, 3, 0, 1, 2])
    assert fit_temperature(lambda inverse: logits * inverse, labels, "single_label", 4).tolist() == [1.0]


def test_texts_read_in_chunks_with_attention_are_calibrated_as_the_saved_model_scores_them(
    tiny_checkpoint: Path, runs: dict[str, Any], tmp_path: Path
) -> None:
    """Attention over chunks weighs them by their confidence, which the temperature changes: the temperature is
    fitted through the aggregation, and the figures recorded are the saved model's."""
    long = [{"text": " ".join([row["text"]] * 6), "label": row["label"]} for row in sentiment_rows(12)]
    files = {**runs["files"], "validation": write_csv(tmp_path / "long.csv", long)}
    options = {"long_text": "chunk", "max_length": 12, "chunk_stride": 2, "chunk_aggregate": "attention"}
    folder = _train(tiny_checkpoint, files, tmp_path / "out", **options)
    recorded = _metrics(folder)["calibration"]["eval"]["after"]
    scored = evaluate_folder(folder, str(files["validation"])).report.metrics
    for name in ("ece", "log_loss", "brier", "accuracy"):
        assert recorded[name] == pytest.approx(scored[name], abs=1e-5)


def test_the_card_says_what_the_temperature_did_and_how_to_get_sets(runs: dict[str, Any]) -> None:
    card = " ".join((runs["calibrated"] / "README.md").read_text(encoding="utf-8").split())
    figures = _metrics(runs["calibrated"])["calibration"]
    temperature, test = figures["temperature"], figures["test"]
    assert f"Its probabilities are calibrated: a temperature of {temperature:.2f}, fitted on 24 validation rows" in card
    assert f"on test from {test['before']['ece']:.3f} to {test['after']['ece']:.3f}" in card
    assert "`predict --coverage 0.9` gives each text the set of labels" in card and "the 24 validation rows" in card
    raw = " ".join((runs["raw"] / "README.md").read_text(encoding="utf-8").split())
    assert "Its probabilities are scores, not guarantees" in raw and "calibrated: a temperature" not in raw
