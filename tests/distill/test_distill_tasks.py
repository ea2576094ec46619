"""Distillation of multi-label, regression and LoRA teachers, and the export of a layers:K student."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli, sentiment_rows, train_tiny_classifier, write_csv

from nlp_transfer import load_classifier

FAST = ["--max-steps", "3", "--learning-rate", "3e-3", "--per-device-train-batch-size", "8", "--seed", "0"]
FAST += ["--disable-tqdm", "true"]
TEXTS = ["message number 3 about feelings", "a completely new text", "message number 11 about feelings"]
PATTERN = ["joy;love", "joy", "anger", "", "anger;sadness", "love;joy", "sadness", "joy;sadness"]


def train(checkpoint: Path, root: Path, train_rows: list[dict], validation_rows: list[dict], *options: str) -> Path:
    files = [write_csv(root / f"{name}.csv", rows) for name, rows in (("train", train_rows), ("val", validation_rows))]
    code, _, err = run_cli(
        "train",
        "--model",
        str(checkpoint),
        "--train-file",
        str(files[0]),
        "--validation-file",
        str(files[1]),
        "--output-dir",
        str(root / "teacher"),
        *FAST,
        *options,
    )
    assert code == 0, err
    return root / "teacher"


def distilled(teacher: Path, out: Path, *options: str) -> dict:
    code, _, err = run_cli(
        "distill", "--teacher", str(teacher), "--output-dir", str(out), "--epochs", "1", "--quiet", *options
    )
    assert code == 0, err
    return json.loads((out / "distill_report.json").read_text())


def test_a_multi_label_teacher_teaches_a_multi_label_student(tiny_checkpoint: Path, tmp_path: Path):
    rows = [{"text": f"message number {i} about feelings", "labels": PATTERN[i % 8]} for i in range(24)]
    teacher = train(tiny_checkpoint, tmp_path, rows, rows[:8], "--label-separator", ";", "--tune-threshold", "true")
    report = distilled(teacher, tmp_path / "student", "--student", "layers:1")
    # The student learns the teacher's probabilities: the thresholds tuned on them decide for it too.
    assert load_classifier(tmp_path / "student").thresholds == load_classifier(teacher).thresholds != {}
    assert report["primary_metric"] in report["splits"]["validation"]["student"]
    student = load_classifier(tmp_path / "student", device="cpu")
    assert student.task == "multi_label" and student.labels == ["anger", "joy", "love", "sadness"]
    predictions = student.predict(TEXTS)
    assert all(set(p["labels"]) <= set(student.labels) and len(p["scores"]) == 4 for p in predictions)


def test_a_regression_teacher_teaches_a_regression_student(tiny_checkpoint: Path, tmp_path: Path):
    values = [{"text": r["text"], "label": 4.5 if r["label"] == "positive" else 0.25} for r in sentiment_rows(12)]
    teacher = train(tiny_checkpoint, tmp_path, values, values[:8])
    report = distilled(teacher, tmp_path / "student", "--student", "layers:1")
    assert report["primary_metric"] in report["splits"]["validation"]["student"]
    student = load_classifier(tmp_path / "student", device="cpu")
    assert student.task == "regression"
    record = json.loads((tmp_path / "student" / "metrics.json").read_text())
    assert record["primary_metric"] == report["primary_metric"] and record["greater_is_better"] is False
    assert all(isinstance(p["score"], float) for p in student.predict(TEXTS))


def test_a_lora_teacher_is_merged_and_its_student_is_a_plain_folder(tiny_checkpoint: Path, tmp_path: Path):
    teacher = train_tiny_classifier(tiny_checkpoint, tmp_path, *FAST, "--strategy", "lora")
    assert (teacher / "adapter_config.json").is_file()
    distilled(teacher, tmp_path / "student", "--student", "layers:1")
    assert not (tmp_path / "student" / "adapter_config.json").exists()
    config = json.loads((tmp_path / "student" / "config.json").read_text())
    assert config["num_hidden_layers"] == 1
    assert {p["label"] for p in load_classifier(tmp_path / "student").predict(TEXTS)} <= {"negative", "positive"}


def test_export_reads_a_layers_student(tiny_checkpoint: Path, tmp_path: Path):
    pytest.importorskip("onnxruntime")
    teacher = train_tiny_classifier(tiny_checkpoint, tmp_path, *FAST)
    distilled(teacher, tmp_path / "student", "--student", "layers:1")
    code, _, err = run_cli("export", "--model", str(tmp_path / "student"), "--output-dir", str(tmp_path / "onnx"))
    assert code == 0, err
    exported = load_classifier(tmp_path / "onnx").predict(TEXTS)
    assert [p["label"] for p in exported] == [p["label"] for p in load_classifier(tmp_path / "student").predict(TEXTS)]


def test_a_sentence_pair_teacher_teaches_on_pairs_and_refuses_a_static_student(tiny_checkpoint: Path, tmp_path: Path):
    rows = [
        {"sentence1": r["text"], "sentence2": "it was " + r["label"], "label": r["label"]} for r in sentiment_rows(12)
    ]
    teacher = train(tiny_checkpoint, tmp_path, rows, rows[:8])  # sentence1/sentence2 found without flags
    report = distilled(teacher, tmp_path / "student", "--student", "layers:1")
    assert report["transfer"]["labelled_rows"] == 24
    student = load_classifier(tmp_path / "student", device="cpu")
    both = student.logits(["great product 1", "great product 1"], ["it was positive", "it was negative"])
    assert not (both[0] == both[1]).all()  # the second text is read
    code, _, err = run_cli(
        "distill", "--teacher", str(teacher), "--student", "static", "--output-dir", str(tmp_path / "static"), "--quiet"
    )
    assert code != 0 and "A static student reads single texts; this teacher reads text pairs" in err
