"""`accelerate launch` with 2 CPU processes (configs/accelerate/cpu_multi_process.yaml).

Every strategy trains data-parallel, one output folder is written, and the evaluation it reports equals a
single-process evaluation of the saved model on the same split.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from nlp_transfer.config.data import DataArguments
from nlp_transfer.data.prepare import load_data
from nlp_transfer.evaluation.metrics import MetricSuite
from nlp_transfer.inference.predict import load_classifier

ROOT = Path(__file__).resolve().parents[2]
EVAL_ROWS = 37  # odd on purpose: 2 processes get uneven shards, so padding duplicates would show


def _data_args(shared: Path | None) -> list[str]:
    if shared is None:  # the package's own demo data
        return ["--max-eval-samples", str(EVAL_ROWS)]
    sst2 = shared / "sst2"
    return [
        "--train-file", str(sst2 / "train.csv"), "--validation-file", str(sst2 / "test.csv"),
        "--max-train-samples", "64", "--max-eval-samples", str(EVAL_ROWS),
    ]  # fmt: skip


def _data_arguments(argv: list[str]) -> DataArguments:
    options = dict(zip(argv[::2], argv[1::2]))
    return DataArguments(
        train_file=options.get("--train-file"),
        validation_file=options.get("--validation-file"),
        max_train_samples=int(options["--max-train-samples"]) if "--max-train-samples" in options else None,
        max_eval_samples=EVAL_ROWS,
    )


@pytest.mark.parametrize("strategy", ["full", "freeze", "lora"])
def test_two_process_training_matches_single_process_evaluation(
    strategy: str, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    from conftest import SHARED_DATA

    data_argv = _data_args(SHARED_DATA if SHARED_DATA.is_dir() else None)
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file",
        str(ROOT / "configs" / "accelerate" / "cpu_multi_process.yaml"),
        str(ROOT / "scripts" / "train.py"), "--model", str(tiny_checkpoint), "--strategy", strategy,
        "--output-dir", str(out), "--num-train-epochs", "1",
        "--learning-rate", "1e-3", "--disable-tqdm", "true", *data_argv,
    ]  # fmt: skip
    if strategy == "freeze":  # an option of another strategy would be refused
        command += ["--train-top-layers", "1"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert "expected to have finished reduction" not in output.lower()  # DDP's unused-parameter error
    assert "find any unused parameters" not in output.lower()  # and its slow-path warning
    assert output.count("Saved to ") == 1, "only the main process reports and writes"
    assert [p.name for p in tmp_path.iterdir()] == ["out"], "exactly one output folder, no staging left"

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["effective_batch_size"]["processes"] == 2
    assert metrics["num_examples"]["validation"] == EVAL_ROWS

    data = load_data(_data_arguments(data_argv), seed=42)
    split = data.splits["validation"]
    classifier = load_classifier(out, device="cpu")
    logits = classifier.logits([str(t) for t in split[data.text_column]])
    single = MetricSuite(data.schema.task, data.schema.names).compute(logits, np.asarray(split["labels"]))
    assert metrics["eval"]["accuracy"] == pytest.approx(single["accuracy"], abs=1e-12)
    assert metrics["eval"]["macro_f1"] == pytest.approx(single["macro_f1"], abs=1e-9)


@pytest.mark.parametrize(
    ("name", "distributed_type"),
    [
        ("single_gpu", "NO"),
        ("multi_gpu_ddp", "MULTI_GPU"),
        ("fsdp_full_shard", "FSDP"),
        ("multi_node_ddp", "MULTI_GPU"),
        ("cpu_multi_process", "MULTI_GPU"),  # the torchrun launcher; the processes then pick gloo on a CPU
    ],
)
def test_shipped_accelerate_configs_load(name: str, distributed_type: str) -> None:
    from accelerate.commands.config.config_args import ClusterConfig

    path = ROOT / "configs" / "accelerate" / f"{name}.yaml"
    raw = yaml.safe_load(path.read_text())
    assert raw["distributed_type"] == distributed_type
    config = ClusterConfig.from_yaml_file(str(path))
    assert config.distributed_type.value == distributed_type
    assert (config.mixed_precision == "no") == (name == "cpu_multi_process")


def test_bf16_without_gpu_trains_in_fp32_and_records_it(
    tiny_checkpoint: Path, sentiment_files: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import torch

    from nlp_transfer import RunConfig, fine_tune

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: bf16 is used as asked")
    config = RunConfig.from_dict(
        {
            "model": str(tiny_checkpoint),
            "train_file": str(sentiment_files["train"]),
            "output_dir": str(tmp_path / "out"),
            "bf16": True,
            "gradient_accumulation_steps": 3,
            "per_device_train_batch_size": 4,
            "num_train_epochs": 1,
            "disable_tqdm": True,
        }
    )
    assert config.training.bf16 is False and config.training.use_cpu is True
    metrics = fine_tune(config).metrics
    assert metrics["precision"] == {"used": "fp32", "asked": "bf16"}  # asked for: no reason of the package's
    assert metrics["effective_batch_size"] == {
        "per_device": 4,
        "processes": 1,
        "gradient_accumulation_steps": 3,
        "total": 12,
    }
