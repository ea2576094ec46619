"""`nlp-transfer benchmark`: how fast each strategy trains and predicts, against a plain Trainer script, in one run.

Every figure is measured here, side by side, on the user's model and data (the machine's matrix-multiply peak
too), never quoted:

- each strategy trains through `fine_tune` at the package's defaults, in a fresh process (so its peak memory is
  its own): samples/s over the whole loop as a user waits for it (Trainer's figure: evaluations and checkpoint
  saves included) and over the training steps alone, real tokens/s, the share of padded tokens, achieved
  FLOP/s (nlp_transfer.modeling.flops, real tokens only) and that as a share of the peak, then `predict` at batch 1 and
  32, and the final validation accuracy;
- the peer is transformers' text-classification example (examples/pytorch/text-classification/run_glue.py) as
  its README runs it: every example padded to max_seq_length 128, batch 32, learning rate 2e-5, fp32, full
  fine-tuning, no evaluation or checkpoint during training, on the same rows, model and epochs; and
  `transformers.pipeline` predicting the same texts with the same model.

All runs read one copy of the data (the training rows drawn once, written under the output folder), so every
strategy and the peer see the same examples. `--architecture bert-base` times a randomly initialised BERT-base
built from its config (with the bundled tokenizer): speed and memory without downloading weights.
"""

from __future__ import annotations

import csv
import json
import math
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nlp_transfer.config.data import DataArguments
from nlp_transfer.data.columns import column_values
from nlp_transfer.data.prepare import load_data
from nlp_transfer.data.reading import demo_data_files
from nlp_transfer.errors import UserInputError
from nlp_transfer.experiments.benchmark_table import peer_row, strategy_row, table, with_ratios
from nlp_transfer.modeling.checkpoints import bundled_model_path
from nlp_transfer.modeling.flops import TokenCounts, training_flops
from nlp_transfer.outputs import check_incremental_folder, mark_owned, read_owner
from nlp_transfer.tasks import SINGLE_LABEL

DEFAULT_STRATEGIES = ("full", "freeze", "lora")
STRATEGY_DEFAULTS: dict[str, dict[str, Any]] = {"freeze": {"train_top_layers": 2}}
"""Options the benchmark gives a strategy beyond the package defaults (freeze: the issue's K=2)."""
PEER = {"max_length": 128, "batch_size": 32, "learning_rate": 2e-5}
"""run_glue.py as transformers' text-classification README runs it (padding to max_seq_length is its default)."""
ARCHITECTURES = {
    "bert-base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
}
PREDICT_BATCHES = (1, 32)
PEAK_SIZE = 2048
PEAK_SECONDS = 2.0
RESULTS_FILE, TABLE_FILE = "benchmark.json", "benchmark.md"


@dataclass
class BenchmarkSettings:
    """What to time: the model, the data, the strategies, and how long each trains."""

    output_dir: Path
    model: str | None = None
    train_file: str | None = None
    validation_file: str | None = None
    text_column: str | None = None
    label_column: str | None = None
    max_train_samples: int | None = 2000
    num_train_epochs: float = 2.0
    strategies: tuple[str, ...] = DEFAULT_STRATEGIES
    peer: bool = True
    architecture: str | None = None
    predict_texts: int = 256
    seed: int = 42
    train_options: dict[str, Any] = field(default_factory=dict)
    """Further `nlp-transfer train` options for every strategy (e.g. torch_compile)."""
    levers: bool = False
    """Also time `full` on the other side of each speed lever (`lever_runs`), to show what each costs or saves."""


def lever_runs(train_rows: int) -> dict[str, dict[str, Any]]:
    """`full` on the side of each speed lever its defaults do not take, by run name: the options to add.

    The levers that could trade accuracy for speed (the batch size, length-grouped batches, frozen word
    embeddings) and the opt-in torch.compile: the benchmark measures both sides and the defaults follow it.
    """
    from nlp_transfer.config.strategy import StrategyArguments
    from nlp_transfer.config.training import TransferTrainingArguments
    from nlp_transfer.training.recipes import batch_size

    default_batch = batch_size(train_rows).value
    other_batch = 8 if default_batch != 8 else 32
    grouped = TransferTrainingArguments.__dataclass_fields__["train_sampling_strategy"].default == "group_by_length"
    frozen = StrategyArguments.__dataclass_fields__["freeze_word_embeddings"].default
    return {
        f"full, batch {other_batch}": {"per_device_train_batch_size": other_batch},
        f"full, {'random order' if grouped else 'length-grouped'}": {
            "train_sampling_strategy": "random" if grouped else "group_by_length"
        },
        f"full, {'trained' if frozen else 'frozen'} word embeddings": {"freeze_word_embeddings": not frozen},
        "full, torch.compile": {"torch_compile": True},
    }


# ------------------------------------------------------------------------------------------------ peak


def matmul_peak(device: str = "cpu", dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of the fastest of repeated square matrix multiplies (size PEAK_SIZE) over PEAK_SECONDS.

    The ceiling a training step's matrix multiplies could reach on this machine, in this precision, now: a
    share of it says how much of the machine a run used.
    """
    a = torch.randn(PEAK_SIZE, PEAK_SIZE, device=device, dtype=dtype)
    b = torch.randn(PEAK_SIZE, PEAK_SIZE, device=device, dtype=dtype)
    best = math.inf
    for _ in range(3):  # warm-up: thread pools, caches, kernel choice
        torch.mm(a, b)
    deadline = time.perf_counter() + PEAK_SECONDS
    while best == math.inf or time.perf_counter() < deadline:
        _synchronize(device)
        started = time.perf_counter()
        torch.mm(a, b)
        _synchronize(device)
        best = min(best, time.perf_counter() - started)
    return 2 * PEAK_SIZE**3 / best


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


# ------------------------------------------------------------------------------------------------ data


def write_benchmark_data(settings: BenchmarkSettings) -> dict[str, str]:
    """Draw the training rows once and write train.csv and validation.csv (text, [text_pair,] label names)."""
    files = demo_data_files() if settings.train_file is None else {"train": settings.train_file}
    args = DataArguments(
        train_file=files["train"],
        validation_file=settings.validation_file or files.get("validation"),
        text_column=settings.text_column,
        label_column=settings.label_column,
        max_train_samples=settings.max_train_samples,
    )
    data = load_data(args, seed=settings.seed)
    if data.schema.task != SINGLE_LABEL:
        raise UserInputError(
            f"The benchmark times single-label classification; {args.train_file} holds {data.schema.task} data."
        )
    folder = settings.output_dir / "data"
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for role in ("train", "validation"):
        split = data.splits[role]
        columns = {"text": column_values(split, data.text_column)}
        if data.text_pair_column:
            columns["text_pair"] = column_values(split, data.text_pair_column)
        columns["label"] = [data.schema.names[i] for i in column_values(split, "labels")]
        path = folder / f"{role}.csv"
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(list(columns))
            writer.writerows(zip(*columns.values()))
        written[role] = str(path)
    return written


def build_architecture(name: str, folder: Path) -> str:
    """A randomly initialised model of a known size with the bundled tokenizer, saved to `folder`."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    if name not in ARCHITECTURES:
        raise UserInputError(f"--architecture {name!r} is not known; choose one of {', '.join(ARCHITECTURES)}.")
    torch.manual_seed(0)
    BertModel(BertConfig(**ARCHITECTURES[name])).save_pretrained(folder)
    AutoTokenizer.from_pretrained(bundled_model_path()).save_pretrained(folder)
    return str(folder)


# ------------------------------------------------------------------------------------------------ runs


def _peak_memory_mb() -> dict[str, float]:
    """This process's peak resident memory (ru_maxrss is KiB on Linux), and GPU memory where there is a GPU."""
    memory = {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if torch.cuda.is_available():
        memory["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return memory


def _predict_rates(predict: Any, texts: list[str]) -> dict[str, float]:
    """Samples/s of `predict(texts, batch_size)` at each of PREDICT_BATCHES (after one warm-up batch)."""
    predict(texts[:2], 1)
    rates = {}
    for batch in PREDICT_BATCHES:
        started = time.perf_counter()
        predict(texts, batch)
        rates[f"batch_{batch}"] = round(len(texts) / (time.perf_counter() - started), 2)
    return rates


def strategy_run(options: dict[str, Any], texts: list[str], compare_pipeline: bool) -> dict[str, Any]:
    """Train one strategy with `fine_tune` and time its `predict` (run in a fresh process)."""
    from nlp_transfer.config.run import RunConfig
    from nlp_transfer.inference.predict import load_classifier
    from nlp_transfer.training.fine_tune import fine_tune

    result = fine_tune(RunConfig.from_dict(options))
    classifier = load_classifier(result.output_dir)
    outcome: dict[str, Any] = {"record": result.record.to_dict()}
    outcome["predict"] = _predict_rates(lambda t, b: classifier.predict(t, batch_size=b), texts)
    if compare_pipeline:
        from transformers import pipeline

        device = next(classifier.model.parameters()).device
        classify = pipeline(
            "text-classification", model=classifier.model, tokenizer=classifier.tokenizer, device=device
        )
        outcome["pipeline"] = _predict_rates(lambda t, b: classify(t, batch_size=b), texts)
        ours = [row["label"] for row in classifier.predict(texts, batch_size=32)]
        theirs = [row["label"] for row in classify(texts, batch_size=32)]
        outcome["pipeline"]["same_labels"] = ours == theirs
    outcome.update(_peak_memory_mb())
    return outcome


def peer_run(model: str, files: dict[str, str], epochs: float, output_dir: str, seed: int) -> dict[str, Any]:
    """transformers' text-classification example at its defaults, on the same rows (run in a fresh process)."""
    from datasets import load_dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    data = load_dataset("csv", data_files=files)
    names = sorted(set(data["train"]["label"][:]))
    pair = "text_pair" if "text_pair" in data["train"].column_names else None
    tokenizer = AutoTokenizer.from_pretrained(model)

    def encode(rows: dict[str, list]) -> dict[str, list]:
        second = rows[pair] if pair else None
        encoded = tokenizer(rows["text"], second, padding="max_length", max_length=PEER["max_length"], truncation=True)
        encoded["labels"] = [names.index(label) for label in rows["label"]]
        return encoded

    encoded = data.map(encode, batched=True, remove_columns=data["train"].column_names)
    torch.manual_seed(seed)
    network = AutoModelForSequenceClassification.from_pretrained(model, num_labels=len(names))
    args = TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=PEER["batch_size"],
        per_device_eval_batch_size=PEER["batch_size"],
        learning_rate=PEER["learning_rate"],
        num_train_epochs=epochs,
        eval_strategy="no",
        save_strategy="no",
        report_to=[],
        seed=seed,
        disable_tqdm=True,
    )

    def accuracy(prediction: Any) -> dict[str, float]:
        return {"accuracy": float(np.mean(np.argmax(prediction.predictions, axis=-1) == prediction.label_ids))}

    trainer = Trainer(model=network, args=args, train_dataset=encoded["train"], compute_metrics=accuracy)
    metrics = trainer.train().metrics
    lengths = [int(sum(mask)) for mask in encoded["train"]["attention_mask"][:]]
    once = training_flops(network, TokenCounts.of(lengths)).total  # one pass over the rows; scaled by epochs
    cost = {
        "sequences": round(len(lengths) * epochs),
        "real_tokens": round(sum(lengths) * epochs),
        "padded_tokens": round(PEER["max_length"] * len(lengths) * epochs),
        "flops": once * epochs,
    }
    evaluation = trainer.evaluate(encoded["validation"])
    return {
        "train_runtime_s": metrics["train_runtime"],
        "train_samples_per_second": metrics["train_samples_per_second"],
        "training_cost": cost,
        "accuracy": evaluation["eval_accuracy"],
        **_peak_memory_mb(),
    }


def _in_fresh_process(function: Any, *args: Any) -> dict[str, Any]:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


# ------------------------------------------------------------------------------------------------ run


def run_benchmark(settings: BenchmarkSettings, progress: bool = True) -> dict[str, Any]:
    """Measure the peak, every strategy and the peer; write benchmark.json and benchmark.md; return the results."""
    from tqdm.auto import tqdm

    folder = settings.output_dir
    inputs = {
        "--train-file": settings.train_file,
        "--validation-file": settings.validation_file,
        "--model": settings.model,
    }
    check_incremental_folder(folder, "benchmark", inputs, recognised=RESULTS_FILE)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    # The package trains in bf16 where the GPU has it (config.default_precision); the peer always in fp32.
    precision = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    files = write_benchmark_data(settings)  # reads and checks the data before anything else is written
    if read_owner(folder) is None:
        mark_owned(folder, "benchmark", whole=False)
    model = settings.model or str(bundled_model_path())
    if settings.architecture:
        model = build_architecture(settings.architecture, folder / f"model-{settings.architecture}")
    texts = _read_texts(files["validation"], settings.predict_texts)
    # The bar starts once the data is read and checked: a bad file's message is then all the user sees.
    stages = ["peak", *settings.strategies] + (["peer"] if settings.peer else [])
    bar = tqdm(total=len(stages), desc="benchmark", unit="run", disable=not progress, file=sys.stderr)
    peak = matmul_peak(device, precision)
    fp32_peak = peak if precision == torch.float32 else matmul_peak(device, torch.float32)
    bar.update()

    rows, outcomes = _run_strategies(settings, model, files, texts, peak, bar)
    if settings.peer:
        bar.set_postfix_str("peer")
        outcomes["peer"] = _in_fresh_process(
            peer_run, model, files, settings.num_train_epochs, str(folder / "runs" / "peer"), settings.seed
        )
        rows.insert(0, peer_row(outcomes["peer"], fp32_peak))
        bar.update()
    bar.close()

    pipeline = outcomes[settings.strategies[0]].get("pipeline") if settings.strategies else None
    results = {
        "device": device,
        "precision": str(precision).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "matmul_peak_gflop_per_s": round(peak / 1e9, 2),
        "fp32_matmul_peak_gflop_per_s": round(fp32_peak / 1e9, 2),
        "model": model,
        "settings": {key: str(value) if isinstance(value, Path) else value for key, value in asdict(settings).items()},
        "rows": with_ratios(rows),
        "pipeline": pipeline,
        "runs": outcomes,
    }
    (folder / RESULTS_FILE).write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    (folder / TABLE_FILE).write_text(table(results), encoding="utf-8")
    return results


def _run_strategies(
    settings: BenchmarkSettings, model: str, files: dict[str, str], texts: list[str], peak: float, bar: Any
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Train every strategy (and, with levers, the lever runs), each in a fresh process: their rows and outcomes."""
    folder = settings.output_dir
    runs = {name: (name, {}) for name in settings.strategies}
    if settings.levers:
        runs.update({name: ("full", extra) for name, extra in lever_runs(_count_rows(files["train"])).items()})
        bar.total += len(runs) - len(settings.strategies)
    rows, outcomes = [], {}
    for name, (strategy, extra) in runs.items():
        bar.set_postfix_str(name)
        options = {
            **settings.train_options,
            **STRATEGY_DEFAULTS.get(strategy, {}),
            **extra,
            "model": model,
            "strategy": strategy,
            "train_file": files["train"],
            "validation_file": files["validation"],
            "num_train_epochs": settings.num_train_epochs,
            "seed": settings.seed,
            "output_dir": str(folder / "runs" / name.replace(", ", "-").replace(" ", "_").replace(".", "_")),
            "overwrite_output_dir": True,
            "disable_tqdm": True,
        }
        outcomes[name] = _in_fresh_process(strategy_run, options, texts, name == settings.strategies[0])
        rows.append(strategy_row(name, outcomes[name], peak))
        bar.update()
    return rows, outcomes


def _count_rows(path: str) -> int:
    with open(path, newline="", encoding="utf-8") as handle:
        return sum(1 for _ in csv.DictReader(handle))


def _read_texts(path: str, limit: int) -> list[str]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [row["text"] for row in csv.DictReader(handle)][:limit]
