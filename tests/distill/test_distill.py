"""`nlp-transfer distill` on a tiny teacher: the student folder is a classifier like any other, the report puts
both side by side, and bad requests are refused before any training."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import refusal, run_cli, sentiment_rows, train_tiny_classifier, write_csv
from hub_simulation import CommittingHub, pushed_card, put_repository, run_snippets, simulated_hub, snippets

from nlp_transfer import DistillOptions, distill, evaluate_folder, load_classifier, push_with_onnx
from nlp_transfer.distill.students import StudentSpec, build_student
from nlp_transfer.errors import UserInputError

FAST = ["--max-steps", "3", "--learning-rate", "3e-3", "--per-device-train-batch-size", "8", "--seed", "0"]
FAST += ["--disable-tqdm", "true"]
TEXTS = [row["text"] for row in sentiment_rows(6)] + ["a brand new sentence", "zzqx unknownish"]


@pytest.fixture(scope="module")
def teacher(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny 2-layer single-label sentiment teacher (its run names its training and validation files)."""
    return train_tiny_classifier(tiny_checkpoint, tmp_path_factory.mktemp("teacher"), *FAST)


@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("unlabelled") / "texts.txt"
    path.write_text("\n".join(f"another review number {i}, fine or not" for i in range(20)) + "\n\n", "utf-8")
    return path


@pytest.fixture(scope="module")
def layers_student(teacher: Path, unlabelled: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("students") / "layers1"
    code, stdout, err = run_cli(
        "distill",
        "--teacher",
        str(teacher),
        "--student",
        "layers:1",
        "--output-dir",
        str(out),
        "--text-file",
        str(unlabelled),
        "--epochs",
        "1",
        "--quiet",
    )
    assert code == 0, err
    assert "| teacher |" in stdout and "| student (layers:1) |" in stdout and "texts/s at batch 32" in stdout
    return out


@pytest.fixture(scope="module")
def static_student(teacher: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("model2vec.distill", reason="the static student needs the 'distill' extra (model2vec)")
    out = tmp_path_factory.mktemp("students") / "static"
    code, _, err = run_cli(
        "distill",
        "--teacher",
        str(teacher),
        "--student",
        "static",
        "--output-dir",
        str(out),
        "--epochs",
        "2",
        "--quiet",
    )
    assert code == 0, err
    assert "Encoding tokens" not in err  # Model2Vec's own bar follows --quiet too
    return out


def test_the_layers_student_keeps_k_layers_and_reloads_with_identical_predictions(layers_student: Path):
    config = json.loads((layers_student / "config.json").read_text())
    assert config["num_hidden_layers"] == 1 and config["model_type"] == "bert"
    report = json.loads((layers_student / "distill_report.json").read_text())
    assert report["method"]["kept_layers"] == [0] and report["method"]["teacher_layers"] == 2
    assert report["method"]["reload_check"]["passed"] is True
    first = load_classifier(layers_student, device="cpu").predict(TEXTS)
    again = load_classifier(layers_student, device="cpu").predict(TEXTS)
    assert first == again
    assert {p["label"] for p in first} <= {"negative", "positive"}


def test_the_layers_student_is_built_from_the_teachers_embeddings_and_layers(teacher: Path):
    import torch

    loaded = load_classifier(teacher, device="cpu")
    student = build_student(StudentSpec.parse("layers:1"), loaded, "teacher", None, 256, 512)
    assert student.model.config.num_hidden_layers == 1
    for name, value in student.model.state_dict().items():
        assert torch.equal(value, loaded.model.state_dict()[name]), name  # layer 0 keeps its index


def test_a_base_student_has_the_teachers_head_on_the_pretrained_weights(teacher: Path, tiny_checkpoint: Path):
    import torch
    from transformers import AutoModel

    loaded = load_classifier(teacher, device="cpu")
    student = build_student(StudentSpec.parse("layers:1"), loaded, "base", str(tiny_checkpoint), 256, 512)
    pretrained = AutoModel.from_pretrained(tiny_checkpoint)
    embeddings = student.model.bert.embeddings.word_embeddings.weight
    assert torch.equal(embeddings, pretrained.embeddings.word_embeddings.weight)
    assert not torch.equal(embeddings, loaded.model.bert.embeddings.word_embeddings.weight)
    assert type(student.model) is type(loaded.model) and student.model.config.id2label == loaded.model.config.id2label


def test_transformers_pipeline_reads_the_layers_student(layers_student: Path):
    from transformers import pipeline

    ours = load_classifier(layers_student, device="cpu").predict(TEXTS)
    theirs = pipeline("text-classification", model=str(layers_student), device="cpu")(TEXTS)
    assert [p["label"] for p in ours] == [p["label"] for p in theirs]
    assert [p["score"] for p in ours] == pytest.approx([p["score"] for p in theirs], abs=1e-5)


def test_the_report_puts_teacher_and_student_side_by_side(layers_student: Path, teacher: Path):
    report = json.loads((layers_student / "distill_report.json").read_text())
    assert report["teacher"] == str(teacher) and report["student"] == "layers:1"
    assert report["transfer"]["labelled_rows"] == 24 and report["transfer"]["unlabelled_texts"] == 20
    validation = report["splits"]["validation"]
    assert validation["rows"] == 8 and 0.0 <= validation["agreement"] <= 1.0
    # The figures are the ones evaluate computes on the same file.
    evaluated = evaluate_folder(layers_student, validation["file"]).report.metrics
    assert validation["student"]["accuracy"] == pytest.approx(evaluated["accuracy"])
    for role in ("teacher", "student"):
        cost = report["cost"][role]
        assert cost["batch_1_texts_per_s"] > 0 and cost["batch_32_texts_per_s"] > 0 and cost["size_mb"] > 0
    teacher_parameters = sum(p.numel() for p in load_classifier(teacher, device="cpu").model.parameters())
    assert report["cost"]["teacher"]["parameters"] == teacher_parameters
    assert report["cost"]["student"]["parameters"] < teacher_parameters


def test_the_card_names_the_teacher_and_the_method(layers_student: Path, teacher: Path):
    card = (layers_student / "README.md").read_text()
    assert f"# Student of {teacher.name}" in card and "--student layers:1" in card
    assert str(teacher) not in card  # the machine's absolute paths stay off the card that goes public
    assert "every other one, as DistilBERT" in card and "KL divergence" in card and "| teacher |" in card


def test_evaluate_predict_file_and_push_read_the_student(layers_student: Path, tmp_path: Path):
    from nlp_transfer import push_folder

    texts = write_csv(tmp_path / "texts.csv", [{"text": t} for t in TEXTS])
    code, _, err = run_cli(
        "predict",
        "--model",
        str(layers_student),
        "--file",
        str(texts),
        "--output",
        str(tmp_path / "out.jsonl"),
        "--quiet",
    )
    assert code == 0, err
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["label"] for r in rows] == [p["label"] for p in load_classifier(layers_student).predict(TEXTS)]
    plan = push_folder(layers_student, "someone/student", dry_run=True)
    assert {"model.safetensors", "config.json", "README.md", "distill_report.json"} <= {f.path for f in plan.files}
    from nlp_transfer.hub.public import public_record

    uploaded = public_record(layers_student / "distill_report.json").decode()
    assert json.loads(uploaded)["teacher"] == "model" and str(tmp_path.parent) not in uploaded


def test_the_static_student_reloads_with_identical_predictions_and_no_encoder(static_student: Path):
    from torch import nn

    classifier = load_classifier(static_student, device="cpu")
    kinds = {type(module) for module in classifier.model.modules()}
    assert nn.Embedding in kinds and not any("Attention" in kind.__name__ or "Layer" in kind.__name__ for kind in kinds)
    first = classifier.predict(TEXTS)
    assert first == load_classifier(static_student, device="cpu").predict(TEXTS)
    report = json.loads((static_student / "distill_report.json").read_text())
    assert report["method"]["student"] == "static" and report["method"]["pca_dims"] == 32  # the teacher's width
    assert report["transfer"] == {**report["transfer"], "labelled_rows": 24, "unlabelled_texts": 0}
    card = (static_student / "README.md").read_text()
    assert "Model2Vec" in card and "`static_classifier.py`" in card and "trust_remote_code=True" in card


def test_predict_file_and_evaluate_read_the_static_student(static_student: Path, tmp_path: Path):
    texts = write_csv(tmp_path / "texts.csv", [{"text": t} for t in TEXTS])
    out = tmp_path / "out.jsonl"
    code, _, err = run_cli("predict", "--model", str(static_student), "--file", str(texts), "--output", str(out))
    assert code == 0, err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["label"] for r in rows] == [p["label"] for p in load_classifier(static_student).predict(TEXTS)]
    report = json.loads((static_student / "distill_report.json").read_text())
    evaluated = evaluate_folder(static_student, report["splits"]["validation"]["file"]).report.metrics
    assert report["splits"]["validation"]["student"]["accuracy"] == pytest.approx(evaluated["accuracy"])


@pytest.mark.parametrize("student", ["layers_student", "static_student"])
def test_a_pushed_students_card_snippets_run_as_written(student: str, request, tmp_path: Path):
    """Pushed with its ONNX graph to a simulated Hub, the card's snippets (transformers alone, nlp-transfer, the graph
    with nlp-transfer and with onnxruntime alone) give the student's scores."""
    pytest.importorskip("onnxruntime", reason="push --with-onnx needs the onnx extra")
    folder = request.getfixturevalue(student)
    api = CommittingHub(namespace="me")
    push_with_onnx(folder, "me/student", token="hf_fake", api=api, latency=False)
    cache = tmp_path / "hub"
    put_repository(cache, "me/student", api.files)
    with simulated_hub(cache):
        codes = snippets(pushed_card(cache, "me/student"))
        assert len(codes) == 4 and ("trust_remote_code=True" in codes[0]) == (student == "static_student")
        run_snippets(codes, folder, "me/student", tmp_path)


def test_the_static_student_reads_texts_as_model2vec_encodes_them(static_student: Path):
    from model2vec import StaticModel

    classifier = load_classifier(static_student, device="cpu")
    encoded = classifier.encode(TEXTS[:3], None)
    vectors = classifier.model.text_vectors(encoded["input_ids"], encoded["attention_mask"]).detach().numpy()
    reference = StaticModel(
        vectors=classifier.model.embeddings.weight.detach().numpy(),
        tokenizer=classifier.tokenizer.backend_tokenizer,
        normalize=True,
    ).encode(TEXTS[:3])
    assert np.allclose(vectors, reference, atol=1e-5)


def test_a_missing_model2vec_is_named_with_the_extra(teacher: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setitem(sys.modules, "model2vec.distill", None)
    monkeypatch.setitem(sys.modules, "model2vec", None)
    code, _, err = run_cli(
        "distill", "--teacher", str(teacher), "--student", "static", "--output-dir", str(tmp_path / "out"), "--quiet"
    )
    assert code != 0 and "pip install 'nlp-transfer[distill]'" in refusal(err)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--student", "layers:2"], "layers:2 needs 1 <= K < 2: the teacher has 2 layers"),
        (["--student", "tiny"], "--student 'tiny' is not a student: give 'layers:K'"),
        (["--student", "layers:1", "--alpha", "0", "--text-file", "x.txt"], "--alpha 0 trains on the true labels"),
        (["--student", "layers:1", "--alpha", "1.5"], "--alpha must be between 0 and 1"),
        (["--student", "layers:1", "--epochs", "0"], "--epochs must be above 0, not 0.0"),
        (["--student", "layers:1", "--text-file", "missing.txt"], "--text-file missing.txt does not exist"),
    ],
)
def test_bad_requests_are_refused_with_one_clear_error_and_nothing_written(teacher, tmp_path, options, message):
    code, _, err = run_cli("distill", "--teacher", str(teacher), "--output-dir", str(tmp_path / "out"), *options)
    assert code != 0 and message in refusal(err)
    assert not (tmp_path / "out").exists()


def test_a_teacher_whose_files_are_gone_asks_for_them(tiny_checkpoint: Path, tmp_path: Path):
    model = train_tiny_classifier(tiny_checkpoint, tmp_path, *FAST)
    (tmp_path / "validation.csv").unlink()
    with pytest.raises(UserInputError, match="names no validation file that is still there. Give --validation-file"):
        distill(DistillOptions(teacher=str(model), student="layers:1", output_dir=str(tmp_path / "out")))
    (tmp_path / "train.csv").rename(tmp_path / "moved.csv")
    with pytest.raises(UserInputError, match="Give --train-file \\(labelled\\) and/or --text-file"):
        distill(
            DistillOptions(
                teacher=str(model),
                student="layers:1",
                output_dir=str(tmp_path / "out"),
                validation_file=str(tmp_path / "moved.csv"),
            )
        )
