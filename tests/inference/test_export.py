"""nlp-transfer export: the ONNX graph and its int8 form score like the PyTorch folder, or the export stops."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import sentiment_rows, write_csv

pytest.importorskip("onnxruntime", reason="export needs the onnx extra: pip install 'nlp-transfer[onnx]'")
pytest.importorskip("onnxscript", reason="export needs the onnx extra: pip install 'nlp-transfer[onnx]'")

import onnx  # noqa: E402

from nlp_transfer import RunConfig, fine_tune  # noqa: E402
from nlp_transfer.cli.app import main  # noqa: E402
from nlp_transfer.errors import UserInputError  # noqa: E402
from nlp_transfer.inference import export as export_module  # noqa: E402
from nlp_transfer.inference.export import ExportOptions, export_model
from nlp_transfer.inference.export_check import ExportVerificationError  # noqa: E402
from nlp_transfer.inference.folder_evaluation import evaluate_folder  # noqa: E402
from nlp_transfer.inference.onnx_runtime import OnnxSequenceClassifier  # noqa: E402
from nlp_transfer.inference.predict import load_classifier  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LONG = " ".join(["great product works well"] * 12)  # 48 words: several windows at max length 12


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("export-data")
    validation = sentiment_rows(12) + [{"text": LONG, "label": "positive"}]  # 25 rows: enough for a temperature
    return {
        "train": write_csv(folder / "train.csv", sentiment_rows(12)),
        "validation": write_csv(folder / "validation.csv", validation),
    }


def _train(checkpoint: Path, data: dict[str, Path], folder: Path, **options: object) -> Path:
    config = {
        "model": str(checkpoint),
        "train_file": str(data["train"]),
        "validation_file": str(data["validation"]),
        "output_dir": str(folder),
        "num_train_epochs": 2,
        "learning_rate": 1e-3,
        "disable_tqdm": True,
        **options,
    }
    return fine_tune(RunConfig.from_dict(config)).output_dir


@pytest.fixture(scope="module")
def trained(tiny_checkpoint: Path, data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pooled head (mean pooling) reading long texts in windows: the package's own settings must survive export."""
    folder = tmp_path_factory.mktemp("export-trained") / "model"
    return _train(tiny_checkpoint, data, folder, pooling="mean", long_text="chunk", max_length=12, chunk_stride=2)


@pytest.fixture(scope="module")
def exported(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, export_module.ExportReport]:
    folder = tmp_path_factory.mktemp("export-onnx") / "onnx"
    return folder, export_model(ExportOptions(model=str(trained), output_dir=str(folder)))


def _texts(data: dict[str, Path]) -> list[str]:
    return [row["text"] for row in sentiment_rows(6)] + [LONG]


def test_the_graph_scores_like_pytorch_and_loads_like_the_trained_folder(
    trained: Path, exported: tuple[Path, export_module.ExportReport], data: dict[str, Path]
) -> None:
    folder, report = exported
    check = report.forms["fp32"]
    assert report.passed and check.label_agreement == 1.0 and check.max_abs_logit_difference < 1e-4
    assert report.validation == {"file": str(data["validation"]), "rows": 25}  # metrics.json's validation file
    assert {p.name for p in folder.iterdir()} >= {"model.onnx", "config.json", "export_report.json", "README.md"}
    assert json.loads((folder / "export_report.json").read_text(encoding="utf-8"))["passed"] is True
    graph = onnx.load(str(folder / "model.onnx"))
    axes = {
        node.name: [d.dim_param or d.dim_value for d in node.type.tensor_type.shape.dim] for node in graph.graph.input
    }
    assert axes == {name: ["batch", "sequence"] for name in ("input_ids", "attention_mask", "token_type_ids")}

    original, onnx_classifier = load_classifier(trained), load_classifier(folder)
    assert isinstance(onnx_classifier.model, OnnxSequenceClassifier)
    assert (onnx_classifier.long_text, onnx_classifier.chunk_stride, onnx_classifier.max_length) == ("chunk", 2, 12)
    texts = _texts(data)
    np.testing.assert_allclose(onnx_classifier.logits(texts), original.logits(texts), atol=1e-4)
    ours, theirs = onnx_classifier.predict(texts), original.predict(texts)
    assert [p["label"] for p in ours] == [p["label"] for p in theirs]
    assert [p["score"] for p in ours] == pytest.approx([p["score"] for p in theirs], abs=1e-5)
    # The scores compared are the calibrated ones (the temperature is in the weights the graph was traced from),
    # and the conformal quantiles travel with the graph.
    assert json.loads((trained / "metrics.json").read_text(encoding="utf-8"))["calibration"]["method"] == "temperature"
    assert onnx_classifier.conformal == original.conformal and original.conformal["quantiles"]
    unseen = ["works well enough", "quite bad, broke", LONG + " but it broke"]  # validation's own texts sit on a bar
    ours, theirs = onnx_classifier.predict(unseen, coverage=0.8), original.predict(unseen, coverage=0.8)
    assert [p["label_set"] for p in ours] == [p["label_set"] for p in theirs]
    ours, theirs = (evaluate_folder(path, str(data["validation"])).report.metrics for path in (folder, trained))
    assert ours.keys() == theirs.keys()
    assert all(ours[k] == pytest.approx(theirs[k], abs=1e-6, nan_ok=True) for k in ours)


def test_int8_is_verified_timed_and_deployed(
    trained: Path, tmp_path: Path, data: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # onnxruntime's quantisation tools write temporary files into the cwd
    report = export_model(ExportOptions(model=str(trained), output_dir=str(tmp_path / "int8"), quantize="int8"))
    assert not list((tmp_path / "cwd").iterdir())
    assert set(report.forms) == {"fp32", "int8"} and report.deployed_file == "model_int8.onnx"
    int8 = report.forms["int8"]
    assert int8.min_agreement == 0.98 and int8.label_agreement >= 0.98 and int8.max_abs_logit_difference > 0
    assert set(report.latency) == {"pytorch", "fp32", "int8"}
    for speed in report.latency.values():
        assert speed["batch_1_ms"] > 0 and speed["batch_32_texts_per_s"] > 0
        assert speed["texts"] == {"batch_1": 25, "batch_32": 25}
    classifier = load_classifier(tmp_path / "int8")
    assert classifier.model.path.name == "model_int8.onnx"
    # One scale per output channel of each quantised weight (per tensor, SST-2 lost 4% of its decisions).
    graph = onnx.load(str(tmp_path / "int8" / "model_int8.onnx"))
    weight_scales = [tuple(t.dims) for t in graph.graph.initializer if t.name.endswith("_scale") and t.dims]
    assert weight_scales and all(len(dims) == 1 and dims[0] > 1 for dims in weight_scales)
    # ... except the feed-forward output projections (intermediate 64 -> hidden 32 here), which stay fp32.
    floats = {t.name: tuple(t.dims) for t in graph.graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    kept = [node for node in graph.graph.node if node.op_type == "MatMul" and floats.get(node.input[1]) == (64, 32)]
    assert len(kept) == 2  # one per layer of the tiny encoder
    assert sum(node.op_type == "MatMulInteger" for node in graph.graph.node) >= 2 * 4  # q, k, v, out, up per layer
    card = (tmp_path / "int8" / "README.md").read_text(encoding="utf-8")
    assert card.startswith((trained / "README.md").read_text(encoding="utf-8").rstrip())  # the trained card first
    assert (
        "## ONNX export" in card and "| int8 (`model_int8.onnx`) | " in card and "onnxruntime.InferenceSession" in card
    )
    # The bare onnxruntime snippet cuts texts at the trained max length and says what load_classifier adds.
    assert "max_length=12," in card and "max_length=512" not in card
    assert "reading longer\ntexts with `chunk`, which `load_classifier` does for you" in card


def test_a_corrupted_graph_fails_verification_and_writes_nothing(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_export = export_module.export_graph

    def corrupted(model, tokenizer, path):  # the classifier layer's weights and bias, negated in the graph
        opset = real_export(model, tokenizer, path)
        graph = onnx.load(str(path))
        heads = [tensor for tensor in graph.graph.initializer if tensor.name.startswith("model.classifier.")]
        assert len(heads) == 2, [tensor.name for tensor in graph.graph.initializer]
        for tensor in heads:
            tensor.CopyFrom(onnx.numpy_helper.from_array(-onnx.numpy_helper.to_array(tensor), tensor.name))
        onnx.save(graph, str(path))
        return opset

    monkeypatch.setattr(export_module, "export_graph", corrupted)
    target = tmp_path / "bad"
    with pytest.raises(ExportVerificationError, match=r"fp32 \(model\.onnx\): .* decisions agree with PyTorch, below"):
        export_model(ExportOptions(model=str(trained), output_dir=str(target), latency=False))
    assert not target.exists() and not list(tmp_path.glob(".bad*"))


def test_a_lora_folder_is_merged_and_exported(tiny_checkpoint: Path, data: dict[str, Path], tmp_path: Path) -> None:
    adapter = _train(tiny_checkpoint, data, tmp_path / "lora", strategy="lora")
    report = export_model(ExportOptions(model=str(adapter), output_dir=str(tmp_path / "onnx"), latency=False))
    assert report.forms["fp32"].max_abs_logit_difference < 1e-4
    texts = _texts(data)
    np.testing.assert_allclose(
        load_classifier(tmp_path / "onnx").logits(texts), load_classifier(adapter).logits(texts), atol=1e-4
    )


def test_without_a_validation_file_to_read_the_export_asks_for_one(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "model"
    shutil.copytree(trained, copy)
    metrics = json.loads((copy / "metrics.json").read_text(encoding="utf-8"))
    metrics["data_sources"]["validation"] = "10% of train (train.csv), seed 42"
    (copy / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    run_config = json.loads((copy / "run_config.json").read_text(encoding="utf-8"))
    run_config["data"]["validation_file"] = None
    (copy / "run_config.json").write_text(json.dumps(run_config), encoding="utf-8")
    assert main(["export", "--model", str(copy), "--output-dir", str(tmp_path / "out")]) == 2
    message = " ".join(capsys.readouterr().err.split())
    assert "had no validation file (it was validated on 10% of train (train.csv), seed 42)" in message
    assert "Give a labelled file with --validation-file FILE" in message
    assert not (tmp_path / "out").exists()


def test_an_intermediate_checkpoint_is_said_to_have_no_known_validation_file(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = tmp_path / "checkpoint-12"
    shutil.copytree(trained, checkpoint)
    (checkpoint / "metrics.json").unlink()
    assert main(["export", "--model", str(checkpoint), "--output-dir", str(tmp_path / "out")]) == 2
    message = " ".join(capsys.readouterr().err.split())
    assert f"{checkpoint} has no metrics.json (a checkpoint of a run), so the validation file of its run is" in message
    assert "had no validation file" not in message


def test_a_validation_file_that_is_gone_is_named(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "model"
    shutil.copytree(trained, copy)
    for name, group in (("metrics.json", "data_sources"), ("run_config.json", "data")):
        record = json.loads((copy / name).read_text(encoding="utf-8"))
        record[group]["validation" if group == "data_sources" else "validation_file"] = str(tmp_path / "gone.csv")
        (copy / name).write_text(json.dumps(record), encoding="utf-8")
    assert main(["export", "--model", str(copy), "--output-dir", str(tmp_path / "out")]) == 2
    assert f"was validated on {tmp_path / 'gone.csv'}, which is no longer there" in " ".join(
        capsys.readouterr().err.split()
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"quantize": "int4"}, r"--quantize 'int4' is not supported; use int8"),
        ({"min_agreement": 1.5}, r"--min-agreement must be in \(0, 1\]"),
        ({"format": "tflite"}, r"--format 'tflite' is not supported; use one of onnx"),
        ({"max_rows": 0}, r"--max-rows must be at least 1"),
    ],
)
def test_bad_options_are_refused_before_any_work(tmp_path: Path, options: dict, message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        export_model(ExportOptions(model=str(tmp_path / "absent"), output_dir=str(tmp_path / "out"), **options))


def test_without_onnxruntime_export_and_loading_say_how_to_install_it(
    exported: tuple[Path, export_module.ExportReport], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # import onnxscript now raises ImportError
    with pytest.raises(UserInputError, match=r"needs onnxscript, not installed: pip install 'nlp-transfer\[onnx\]'"):
        export_model(ExportOptions(model=str(tmp_path / "absent"), output_dir=str(tmp_path / "out")))
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(UserInputError, match=r"needs onnxscript, onnxruntime, not installed: pip install"):
        export_model(ExportOptions(model=str(tmp_path / "absent"), output_dir=str(tmp_path / "out")))
    with pytest.raises(UserInputError, match=r"ONNX models run with onnxruntime, which is not installed"):
        load_classifier(exported[0])


def test_the_int8_settings_script_scores_three_quantisations_beside_pytorch(
    trained: Path, data: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """scripts/benchmark_int8.py (BENCHMARKS "Export") runs on export's own functions; a rename there breaks it."""
    spec = importlib.util.spec_from_file_location("benchmark_int8", ROOT / "scripts" / "benchmark_int8.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "settings"
    argv = ["benchmark_int8.py", "--model", str(trained), "--validation-file", str(data["validation"])]
    monkeypatch.setattr(sys, "argv", [*argv, "--output-dir", str(out)])

    assert script.main() == 0

    results = json.loads((out / "results.json").read_text(encoding="utf-8"))["results"]
    assert [entry["form"] for entry in results[:2]] == ["pytorch", "fp32"] and len(results) == 5
    assert results[1]["agreement"] == 1.0 and results[1]["max_abs_logit_difference"] < 1e-4
    assert all(0 <= entry["agreement"] <= 1 and entry["batch_32_texts_per_s"] > 0 for entry in results[1:])
    assert "(nlp-transfer)" in results[-1]["form"] and (out / "results.md").read_text(encoding="utf-8").count("\n") == 7
    # onnxruntime's default, as the first int8 row says: one scale per weight tensor (the export's are per channel).
    per_tensor = onnx.load(str(out / "int8_0.onnx")).graph.initializer
    scales = [tuple(t.dims) for t in per_tensor if t.name.endswith("_scale")]
    assert scales and all(dims in ((), (1,)) for dims in scales)
