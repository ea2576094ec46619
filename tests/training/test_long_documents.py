"""--long-text through a whole run: texts cut as asked, the lengths reported, and a reloaded model cutting alike."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_csv

from nlp_transfer import RunConfig, fine_tune
from nlp_transfer.data.long_text import head_tail_split
from nlp_transfer.data.prepare import PreparedData
from nlp_transfer.data.tokenize import tokenize
from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.documents import aggregate_logits
from nlp_transfer.evaluation.metrics import MetricSuite, TrainerMetrics
from nlp_transfer.inference.folder_evaluation import evaluate_folder
from nlp_transfer.inference.predict import load_classifier

# Words the bundled WordPiece vocabulary holds as one token each: a text of n of them is n + 2 tokens.
WORDS = "alpha bravo charlie delta echo golf hotel india lima mike oscar papa quebec romeo sierra tango".split()
MAX_LENGTH = 12  # 10 text tokens


def _text(start: int, n: int) -> str:
    return " ".join(WORDS[(start + i) % len(WORDS)] for i in range(n))


def _files(tmp_path: Path) -> dict[str, str]:
    """Train: 8 of 20 texts longer than MAX_LENGTH (30 words); validation: 2 of 4, the larger share."""
    train = [{"text": _text(i, 30 if i % 5 in (0, 1) else 6), "label": "ab"[i % 2]} for i in range(20)]
    validation = [{"text": _text(i, 30 if i < 2 else 6), "label": "ab"[i % 2]} for i in range(4)]
    return {
        "train_file": str(write_csv(tmp_path / "data" / "train.csv", train)),
        "validation_file": str(write_csv(tmp_path / "data" / "validation.csv", validation)),
    }


def _run(checkpoint: Path, tmp_path: Path, mode: str, **extra):
    options = {
        "model": str(checkpoint),
        **_files(tmp_path),
        "output_dir": str(tmp_path / mode),
        "long_text": mode,
        "max_length": MAX_LENGTH,
        "num_train_epochs": 1,
        "learning_rate": 1e-3,
        "disable_tqdm": True,
        **extra,
    }
    return fine_tune(RunConfig.from_dict(options))


def test_head_tail_is_reported_saved_and_read_back_by_prediction(
    tiny_checkpoint: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nlp_transfer")
    result = _run(tiny_checkpoint, tmp_path, "head-tail")
    report = result.record.long_text
    assert report["mode"] == "head-tail" and report["max_length"] == MAX_LENGTH
    train = report["splits"]["train"]
    assert (train["documents"], train["truncated"], train["truncated_share"]) == (20, 8, 0.4)
    assert train["tokens"]["max"] == 32 and train["tokens"]["min"] == 8
    assert report["splits"]["validation"]["truncated"] == 2
    assert report["advice"] == (
        "In validation, 50.0% of 4 documents (2) are longer than 12 tokens and lose their middle to "
        "--long-text head-tail; try --long-text chunk (reads all of each document in windows) or --long-text "
        "truncate-tail (keeps the end)."
    )
    assert report["advice"] in caplog.text
    assert "Token lengths of train (20 texts): median 8, p90 32, p99 32, max 32; 40.0% longer than 12" in caplog.text
    saved = json.loads((result.output_dir / "metrics.json").read_text(encoding="utf-8"))
    assert saved["long_text"] == report
    config = json.loads((result.output_dir / "config.json").read_text(encoding="utf-8"))
    assert config["nlp_transfer"]["long_text"] == "head-tail"

    # The reloaded classifier keeps the head and the tail of a long text, exactly as training did.
    classifier = load_classifier(result.output_dir)
    assert classifier.long_text == "head-tail"
    tokenizer = classifier.tokenizer
    long = _text(3, 30)
    ids = tokenizer(long)["input_ids"]
    head, tail = head_tail_split(MAX_LENGTH - 2)
    kept = [ids[0], *ids[1 : 1 + head], *ids[-1 - tail : -1], ids[-1]]
    assert len(kept) == MAX_LENGTH
    with torch.no_grad():
        expected = classifier.model(input_ids=torch.tensor([kept])).logits.numpy()
    np.testing.assert_allclose(classifier.logits([long]), expected, atol=1e-5)


def test_truncate_tail_reads_the_end_and_short_texts_give_no_advice(tiny_checkpoint: Path, tmp_path: Path) -> None:
    result = _run(tiny_checkpoint, tmp_path, "truncate-tail", max_length=40)
    assert result.record.long_text["splits"]["train"]["truncated"] == 0 and result.record.long_text["advice"] is None
    classifier = load_classifier(result.output_dir)
    assert classifier.long_text == "truncate-tail"
    classifier.max_length = MAX_LENGTH  # cut a long text to see which end is kept
    ids = classifier.tokenizer(_text(0, 30))["input_ids"]
    kept = [ids[0], *ids[-MAX_LENGTH + 1 :]]
    with torch.no_grad():
        expected = classifier.model(input_ids=torch.tensor([kept])).logits.numpy()
    np.testing.assert_allclose(classifier.logits([_text(0, 30)]), expected, atol=1e-5)


def test_an_older_folder_reads_as_truncate_head(tiny_checkpoint: Path, tmp_path: Path) -> None:
    result = _run(tiny_checkpoint, tmp_path, "truncate-head")
    config_path = result.output_dir / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    del config["nlp_transfer"]["long_text"]
    config_path.write_text(json.dumps(config), encoding="utf-8")
    assert load_classifier(result.output_dir).long_text == "truncate-head"
    assert result.record.long_text["advice"] == (
        "In validation, 50.0% of 4 documents (2) are longer than 12 tokens and lose their end to "
        "--long-text truncate-head; try --long-text chunk (reads all of each document in windows) or --long-text "
        "truncate-tail (keeps the end)."
    )


def test_text_pairs_are_refused_with_other_modes(tmp_path: Path) -> None:
    rows = [{"premise": _text(i, 4), "hypothesis": _text(i + 1, 4), "label": "ab"[i % 2]} for i in range(8)]
    path = write_csv(tmp_path / "pairs.csv", rows)
    options = {"train_file": str(path), "text_pair_column": "hypothesis", "text_column": "premise"}
    with pytest.raises(UserInputError, match=r"--long-text head-tail reads single texts.*--text-pair-column hypot"):
        RunConfig.from_dict({**options, "long_text": "head-tail", "output_dir": str(tmp_path / "out")}).validate()


# ---------------------------------------------------------------------------------- chunk

STRIDE = 4  # windows of 10 text tokens, 6 apart: a 30-word text is read in 5 windows, a 6-word one in 1


def _windows(ids: list[int], content: int, stride: int) -> list[list[int]]:
    """A text's windows written out by hand: [CLS] + text tokens [k * step, k * step + content) + [SEP]."""
    text, step, windows = ids[1:-1], content - stride, []
    for start in range(0, len(text), step):
        windows.append([ids[0], *text[start : start + content], ids[-1]])
        if start + content >= len(text):
            break
    return windows


def test_chunk_trains_on_windows_scores_documents_and_reloads_alike(tiny_checkpoint: Path, tmp_path: Path) -> None:
    result = _run(tiny_checkpoint, tmp_path, "chunk", chunk_stride=STRIDE, chunk_aggregate="attention")
    report = result.record.long_text
    # 8 long texts x 5 windows + 12 short x 1; validation: 2 x 5 + 2 x 1. No advice: nothing is lost.
    assert (report["splits"]["train"]["chunks"], report["splits"]["validation"]["chunks"]) == (52, 12)
    assert report["advice"] is None
    saved = json.loads((result.output_dir / "config.json").read_text(encoding="utf-8"))["nlp_transfer"]
    assert (saved["long_text"], saved["chunk_stride"], saved["chunk_aggregate"]) == ("chunk", STRIDE, "attention")

    # The reloaded classifier reads a long text in the same windows and weighs them by their confidence.
    classifier = load_classifier(result.output_dir)
    assert (classifier.long_text, classifier.chunk_stride, classifier.chunk_aggregate) == ("chunk", 4, "attention")
    long = _text(3, 30)
    windows = _windows(classifier.tokenizer(long)["input_ids"], MAX_LENGTH - 2, STRIDE)
    assert len(windows) == 5 and all(len(w) == MAX_LENGTH for w in windows[:-1]) and len(windows[-1]) == 8
    with torch.no_grad():
        window_logits = classifier.model(input_ids=torch.tensor(windows[:-1])).logits.numpy()
        last = classifier.model(input_ids=torch.tensor(windows[-1:])).logits.numpy()
    window_logits = np.concatenate([window_logits, last]).astype(float)
    confidence = np.log(np.exp(window_logits).max(axis=1) / np.exp(window_logits).sum(axis=1))
    weights = np.exp(confidence) / np.exp(confidence).sum()
    np.testing.assert_allclose(classifier.logits([long]), [weights @ window_logits], atol=1e-5)
    windows_read, documents = classifier.window_logits([_text(0, 6), long])  # before aggregation, longest first
    assert documents.tolist() == [1, 1, 1, 1, 1, 0]
    np.testing.assert_allclose(windows_read[:5], window_logits, atol=1e-5)

    # The run's validation metrics are per document: the reloaded model scoring the 4 texts gives the same.
    metrics = json.loads((result.output_dir / "metrics.json").read_text(encoding="utf-8"))["eval"]
    evaluation = evaluate_folder(result.output_dir, _files(tmp_path)["validation_file"]).report
    assert metrics["num_examples"] == evaluation.num_examples == 4
    for name in ("accuracy", "macro_f1", "log_loss", "brier", "roc_auc"):
        assert metrics[name] == pytest.approx(evaluation.metrics[name], abs=1e-6), name


def _task_files(tmp_path: Path, task: str) -> dict[str, str]:
    """Train and validation files of `task` whose long texts are read in several windows."""

    def label(i: int) -> str:
        if task == "multi_label":
            return ["a", "b", "a;b", ""][i % 4]
        if task == "regression":
            return str(round(0.25 * (i % 5), 2))
        return "ab"[i % 2]

    train = [{"text": _text(i, 30 if i % 3 == 0 else 6), "label": label(i)} for i in range(24)]
    validation = [{"text": _text(i + 5, 30 if i % 2 == 0 else 6), "label": label(i)} for i in range(8)]
    return {
        "train_file": str(write_csv(tmp_path / task / "train.csv", train)),
        "validation_file": str(write_csv(tmp_path / task / "validation.csv", validation)),
    }


@pytest.mark.parametrize(
    ("strategy", "task", "aggregate", "extra"),
    [
        ("full", "single_label", "max", {}),
        ("lora", "multi_label", "mean", {"label_separator": ";"}),
        ("freeze", "regression", "first", {"train_top_layers": 1}),
        ("hybrid", "single_label", "mean", {"train_top_layers": 1}),
        ("scratch", "multi_label", "attention", {"label_separator": ";"}),
    ],
)
def test_chunk_scores_per_document_with_every_strategy_and_task(
    tiny_checkpoint: Path, tmp_path: Path, strategy: str, task: str, aggregate: str, extra: dict
) -> None:
    files = _task_files(tmp_path, task)
    options = {
        "model": str(tiny_checkpoint),
        **files,
        "output_dir": str(tmp_path / "out"),
        "strategy": strategy,
        "task": task,
        "long_text": "chunk",
        "chunk_stride": 2,
        "chunk_aggregate": aggregate,
        "max_length": MAX_LENGTH,
        "num_train_epochs": 1,
        "learning_rate": 1e-3,
        "disable_tqdm": True,
        **extra,
    }
    result = fine_tune(RunConfig.from_dict(options))
    # 8 of 24 train texts are 30 words: windows of 10 tokens, 8 apart: 4 each (0, 8, 16, 24); 16 short: 1.
    assert result.record.long_text["splits"]["train"]["chunks"] == 8 * 4 + 16
    metrics = json.loads((result.output_dir / "metrics.json").read_text(encoding="utf-8"))["eval"]
    evaluation = evaluate_folder(result.output_dir, files["validation_file"])
    assert metrics["num_examples"] == evaluation.report.num_examples == 8
    shared = {name for name, value in evaluation.report.metrics.items() if isinstance(value, float)} & set(metrics)
    assert shared, evaluation.report.metrics
    for name in shared:
        assert metrics[name] == pytest.approx(evaluation.report.metrics[name], abs=1e-5), name


def test_trainer_metrics_score_the_aggregated_documents() -> None:
    """Trainer hands chunked splits over as (labels, document ids): the suite scores one row per document."""
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 3.0], [1.0, 0.0], [0.5, 0.0]])
    labels = np.array([0, 0, 1, 0, 0])
    documents = np.array([7, 7, 3, 9, 9])  # document 7 mean [1, 0.5] -> 0 (right); 3 -> 1 (right); 9 -> 0 (right)
    suite = MetricSuite("single_label", ["neg", "pos"], ["accuracy", "log_loss"])
    scored = TrainerMetrics(suite, "mean")(_Prediction(logits, (labels, documents)))
    _, by_document = aggregate_logits(logits, documents, "mean", "single_label")
    expected = suite.evaluate(by_document, np.array([1, 0, 0]), details=False).metrics  # documents 3, 7, 9
    assert scored == expected and scored["accuracy"] == 1.0
    # per chunk, the second row of document 7 would have been wrong
    assert TrainerMetrics(suite)(_Prediction(logits, labels))["accuracy"] == 0.8


class _Prediction:
    def __init__(self, predictions: np.ndarray, label_ids: object) -> None:
        self.predictions, self.label_ids = predictions, label_ids


def test_chunk_rows_carry_their_texts_row_and_label_across_map_batches(bundled_tokenizer_path: Path) -> None:
    """datasets maps 1,000 rows a batch: `document` must count rows of the split, not of the batch."""
    from datasets import Dataset, DatasetDict
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(bundled_tokenizer_path)
    texts = [_text(i, 30 if i in (3, 1002) else 2) for i in range(1005)]
    split = Dataset.from_dict({"text": texts, "labels": [i % 2 for i in range(1005)]})
    data = PreparedData(DatasetDict(train=split), schema=None, text_column="text", text_pair_column=None, sources={})
    encoded = tokenize(data, tokenizer, MAX_LENGTH, "chunk", chunk_stride=STRIDE)["train"]
    documents = encoded["document"]
    assert len(encoded) == 1005 + 2 * 4  # two texts of 5 windows
    assert documents[3:8] == [3] * 5 and documents[1002 + 4 : 1002 + 9] == [1002] * 5 and documents[-1] == 1004
    assert encoded["labels"][1006:1011] == [0] * 5 and encoded["labels"][-1] == 0
    assert sorted(encoded.column_names) == ["attention_mask", "document", "input_ids", "labels", "token_type_ids"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"chunk_stride": 4}, r"--chunk-stride 4 only applies to --long-text chunk"),
        ({"chunk_aggregate": "max"}, r"--chunk-aggregate max only applies to --long-text chunk"),
        (
            {"long_text": "chunk", "chunk_aggregate": "median"},
            r"'chunk_aggregate' .* invalid value 'median'; choose one of \['mean'",
        ),
        ({"long_text": "chunk", "chunk_stride": -1}, r"--chunk-stride -1 is negative"),
    ],
)
def test_chunk_options_are_checked_before_any_file_is_read(tmp_path: Path, options: dict, message: str) -> None:
    config = {"train_file": str(tmp_path / "absent.csv"), "output_dir": str(tmp_path / "out"), **options}
    with pytest.raises(UserInputError, match=message):
        RunConfig.from_dict(config).validate()


def test_a_stride_that_leaves_no_progress_is_refused(tiny_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"--chunk-stride 10 must be smaller than the 10 text tokens"):
        _run(tiny_checkpoint, tmp_path, "chunk", chunk_stride=10)
