"""`suggest` and `nlp-transfer suggest`: the k texts of a small pool to label next, written with their rank, pool row,
strategy, score and reason before the pool's own columns; labelled texts, repeats and empty texts never suggested;
CSV, TSV and JSON Lines; the refusals (exit code 2 and the message); with a trained classifier, cluster-margin by
default, its predicted label and probability, and margin order.

The cold start embeds with the bundled MiniLM (tens of texts: seconds); one tiny classifier is trained for the module
on the tiny random checkpoint, as tests/inference/test_corpus.py does.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from conftest import COOKING as ALL_COOKING
from conftest import FINANCE as ALL_FINANCE
from conftest import SPORTS as ALL_SPORTS
from conftest import refusal, run_cli, sentiment_rows, train_tiny_classifier, write_csv

from nlp_transfer.cli.app import main
from nlp_transfer.errors import UserInputError
from nlp_transfer.inference.predict import load_classifier
from nlp_transfer.labels.embeddings import classifier_vectors
from nlp_transfer.labels.pool import same_text_key
from nlp_transfer.labels.selection import margins
from nlp_transfer.labels.suggest import SuggestOptions, suggest

SPORTS, COOKING, FINANCE = ALL_SPORTS[:10], ALL_COOKING[:10], ALL_FINANCE[:10]
REPEAT = "  the STRIKER scored twice in the second half  to win the derby"
"""SPORTS[0] again, up to case and spaces: a repeat of an earlier row."""
LABELLED = [
    COOKING[0].upper(),
    f"  {FINANCE[0]} ",
    FINANCE[1].replace(" ", "   "),
    "Prune the roses in late winter before new growth starts",
]
"""Three pool texts up to case and spaces, and one text the pool does not hold."""
HEADER = ["rank", "row", "strategy", "score", "reason"]


def pool_rows() -> list[dict[str, str]]:
    """33 rows: the 30 topic texts interleaved, two empty texts (rows 5 and 14) and a repeat (row 33)."""
    rows = []
    for i in range(10):
        for topic, texts in (("sports", SPORTS), ("cooking", COOKING), ("finance", FINANCE)):
            rows.append({"text": texts[i], "topic": topic})
    rows.insert(4, {"text": "", "topic": "none"})
    rows.insert(13, {"text": "   ", "topic": "none"})
    rows.append({"text": REPEAT, "topic": "sports"})
    return [{"id": f"{n:03d}", **row} for n, row in enumerate(rows, start=1)]


POOL = pool_rows()
EMPTY_ROWS = [5, 14]
REPEAT_ROW = 33
LABELLED_ROWS = sorted(
    n for n, row in enumerate(POOL, 1) if same_text_key(row["text"]) in {same_text_key(t) for t in LABELLED}
)
ELIGIBLE_ROWS = [n for n in range(1, len(POOL) + 1) if n not in EMPTY_ROWS + LABELLED_ROWS + [REPEAT_ROW]]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("suggest")
    return {
        "pool": write_csv(root / "pool.csv", POOL),
        "labelled": write_csv(root / "labelled.csv", [{"text": t, "label": "x"} for t in LABELLED]),
    }


def run(*argv: str) -> tuple[int, str, str]:
    """`nlp-transfer suggest` in this process: (exit code, stdout, stderr)."""
    return run_cli("suggest", "--quiet", *argv)


def read_csv(path: Path, delimiter: str = ",") -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        return list(reader.fieldnames or []), list(reader)


def test_the_pool_is_what_the_tests_assume() -> None:
    assert len(POOL) == 33
    assert LABELLED_ROWS == [2, 3, 7]  # COOKING[0], FINANCE[0], FINANCE[1]
    assert len(ELIGIBLE_ROWS) == 27
    assert same_text_key(POOL[REPEAT_ROW - 1]["text"]) == same_text_key(POOL[0]["text"])


# ------------------------------------------------------------------------------------------ cold start


@pytest.fixture(scope="module")
def cold_start(files: dict[str, Path]) -> dict:
    """One CLI run: typiclust, k = 3, with --labelled, written as CSV."""
    output = files["pool"].parent / "to_label.csv"
    code, out, err = run(
        "--pool", str(files["pool"]), "--labelled", str(files["labelled"]), "--k", "3", "--output", str(output)
    )
    assert code == 0, err
    return {"output": output, "stdout": out}


def test_cold_start_writes_k_rows_with_the_pool_columns_after_its_own(cold_start: dict) -> None:
    header, records = read_csv(cold_start["output"])
    assert header == [*HEADER, "id", "text", "topic"]
    assert [r["rank"] for r in records] == ["1", "2", "3"]
    assert {r["strategy"] for r in records} == {"typiclust"}
    for record in records:
        row = int(record["row"])
        assert record["id"] == POOL[row - 1]["id"] == f"{row:03d}"  # the id kept as written ("007", not 7)
        assert record["text"] == POOL[row - 1]["text"]
        assert record["topic"] == POOL[row - 1]["topic"]
        assert float(record["score"]) > 0
        assert record["reason"].startswith("typical of cluster ")
        assert row in ELIGIBLE_ROWS


def test_a_cold_start_of_three_covers_the_three_topics(files: dict[str, Path]) -> None:
    table = suggest(files["pool"], SuggestOptions(k=3, progress=False)).table
    assert sorted(table["topic"]) == ["cooking", "finance", "sports"]
    assert list(table["strategy"]) == ["typiclust"] * 3


def test_cold_start_prints_what_the_pool_held(cold_start: dict) -> None:
    assert cold_start["stdout"] == (
        "3 texts suggested by typiclust from 27 eligible of 33 pool rows (left out: 2 empty texts, 3 already "
        f"labelled, 1 repeated texts); written to {cold_start['output']}\n"
    )


@pytest.mark.parametrize("suffix", [".tsv", ".jsonl"])
def test_tsv_and_jsonl_outputs_hold_the_same_rows(cold_start: dict, files: dict[str, Path], suffix: str) -> None:
    output = files["pool"].parent / f"to_label{suffix}"
    code, _, err = run(
        "--pool", str(files["pool"]), "--labelled", str(files["labelled"]), "--k", "3", "--output", str(output)
    )
    assert code == 0, err
    expected_header, expected = read_csv(cold_start["output"])
    if suffix == ".tsv":
        header, records = read_csv(output, delimiter="\t")
        assert header == expected_header
        assert records == expected
    else:
        lines = output.read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines]
        assert len(records) == 3
        assert [list(r) for r in records] == [expected_header] * 3
        for record, want in zip(records, expected):
            assert record["rank"] == int(want["rank"]) and record["row"] == int(want["row"])
            assert record["score"] == pytest.approx(float(want["score"]))
            assert record["id"] == want["id"] and isinstance(record["id"], str)
            assert {k: record[k] for k in ("strategy", "reason", "text", "topic")} == {
                k: want[k] for k in ("strategy", "reason", "text", "topic")
            }


def test_every_eligible_text_and_none_other_is_suggested(files: dict[str, Path]) -> None:
    """Asked for more than the pool holds: exactly the eligible rows, never a labelled, repeated or empty text."""
    result = suggest(
        files["pool"], SuggestOptions(k=50, strategy="random", labelled=str(files["labelled"]), progress=False)
    )
    table = result.table
    assert sorted(table["row"]) == ELIGIBLE_ROWS
    assert list(table["rank"]) == list(range(1, 28))
    keys = [same_text_key(t) for t in table["text"]]
    assert len(set(keys)) == len(keys)
    assert not set(keys) & {same_text_key(t) for t in LABELLED}
    assert all(t.strip() for t in table["text"])
    assert (result.pool_rows, result.eligible) == (33, 27)
    assert result.counts == {"empty texts": 2, "already labelled": 3, "repeated texts": 1}
    assert result.summary() == (
        "27 texts suggested by random from 27 eligible of 33 pool rows (left out: 2 empty texts, 3 already "
        "labelled, 1 repeated texts)"
    )


def test_fewer_qualifying_texts_than_k_is_a_warning_not_an_error(
    files: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="nlp_transfer.labels.suggest"):
        result = suggest(files["pool"], SuggestOptions(k=40, strategy="typiclust", progress=False))
    assert result.eligible == 30  # 30 texts and a repeat; nothing labelled
    assert sorted(result.table["row"]) == sorted(ELIGIBLE_ROWS + LABELLED_ROWS)
    assert "Only 30 of the 40 texts asked for qualify (pool too small or too repetitive)." in caplog.text


def test_random_is_reproducible_by_seed(files: dict[str, Path]) -> None:
    def rows(seed: int) -> list[int]:
        return list(
            suggest(files["pool"], SuggestOptions(k=5, strategy="random", seed=seed, progress=False)).table["row"]
        )

    assert rows(1) == rows(1)
    assert rows(1) != rows(2)


def test_reserved_column_names_of_the_pool_are_prefixed(tmp_path: Path) -> None:
    rows = [{"row": f"r{n}", "score": str(n), "text": t} for n, t in enumerate(SPORTS[:4] + COOKING[:4], start=1)]
    pool = write_csv(tmp_path / "pool.csv", rows)
    table = suggest(pool, SuggestOptions(k=2, strategy="random", progress=False)).table
    assert list(table.columns) == [*HEADER, "pool_row", "pool_score", "text"]
    for _, record in table.iterrows():
        assert record["pool_row"] == f"r{record['row']}" and record["pool_score"] == str(record["row"])


def test_a_jsonl_pool_with_another_text_column(tmp_path: Path) -> None:
    pool = tmp_path / "pool.jsonl"
    records = [{"key": n, "body": t} for n, t in enumerate(["", *SPORTS[:3], *FINANCE[:3]], start=1)]
    pool.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    labelled = write_csv(tmp_path / "labelled.csv", [{"sentence": SPORTS[1].lower()}])
    output = tmp_path / "out.csv"
    code, out, err = run(
        "--pool", str(pool), "--text-column", "body", "--labelled", str(labelled), "--labelled-text-column",
        "sentence", "--strategy", "random", "--k", "10", "--output", str(output),
    )  # fmt: skip
    assert code == 0, err
    header, written = read_csv(output)
    assert header == [*HEADER, "key", "body"]
    assert sorted(int(r["row"]) for r in written) == [2, 4, 5, 6, 7]  # row 1 empty, row 3 labelled
    assert all(r["key"] == r["row"] for r in written)
    assert "5 texts suggested by random from 5 eligible of 7 pool rows" in out


# ------------------------------------------------------------------------------------------- refusals


def test_output_over_the_pool_is_refused(files: dict[str, Path]) -> None:
    before = files["pool"].read_bytes()
    code, _, err = run("--pool", str(files["pool"]), "--k", "3", "--output", str(files["pool"]))
    assert code == 2
    pool = files["pool"]
    assert refusal(err) == f"--output {pool} is one of the input files ({pool}); give another name."
    assert files["pool"].read_bytes() == before


def test_output_over_the_labelled_file_is_refused(files: dict[str, Path], tmp_path: Path) -> None:
    labelled = tmp_path / "labelled.csv"
    labelled.write_bytes(files["labelled"].read_bytes())
    code, _, err = run("--pool", str(files["pool"]), "--labelled", str(labelled), "--k", "2", "--output", str(labelled))
    assert code == 2
    assert refusal(err) == f"--output {labelled} is one of the input files ({labelled}); give another name."
    assert labelled.read_bytes() == files["labelled"].read_bytes()


def test_output_a_folder_or_an_unknown_type_is_refused(files: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "out.csv"
    folder.mkdir()
    code, _, err = run("--pool", str(files["pool"]), "--k", "2", "--output", str(folder))
    assert code == 2
    assert refusal(err) == f"--output {folder} is a folder; give a file name, e.g. {folder / 'labels.csv'}."
    code, _, err = run("--pool", str(files["pool"]), "--k", "2", "--output", str(tmp_path / "out.txt"))
    assert code == 2
    assert refusal(err) == f"--output {tmp_path / 'out.txt'}: give a file ending in one of .csv, .tsv, .jsonl."
    assert not (tmp_path / "out.txt").exists()


def test_a_bad_output_is_refused_before_any_text_is_embedded(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_encoder(*args: object, **kwargs: object) -> None:
        raise AssertionError("the encoder was loaded before --output was checked")

    monkeypatch.setattr("nlp_transfer.labels.suggest.Encoder", no_encoder)
    code, _, err = run("--pool", str(files["pool"]), "--k", "2", "--output", str(files["pool"]))
    assert code == 2
    assert refusal(err) == f"--output {files['pool']} is one of the input files ({files['pool']}); give another name."


def test_an_unknown_text_column_is_refused_naming_the_columns(files: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "out.csv"
    code, _, err = run("--pool", str(files["pool"]), "--text-column", "body", "--k", "2", "--output", str(output))
    assert code == 2
    assert refusal(err) == (
        f"Column 'body' (--text-column) is not in {files['pool']}; its columns are: id, text, topic. "
        "Name an existing column with --text-column."
    )
    assert not output.exists()


def test_a_pool_without_a_text_column_is_refused(tmp_path: Path) -> None:
    pool = write_csv(tmp_path / "pool.csv", [{"id": "1", "body": "a text"}])
    code, _, err = run("--pool", str(pool), "--k", "2", "--output", str(tmp_path / "out.csv"))
    assert code == 2
    message = refusal(err)
    assert message.startswith(f"No text column found in {pool}: looked for ")
    assert message.endswith("its columns are id, body. Name it with --text-column.")


def test_a_pool_of_empty_texts_is_refused(tmp_path: Path) -> None:
    pool = write_csv(tmp_path / "pool.csv", [{"text": ""}, {"text": "  "}])
    code, _, err = run("--pool", str(pool), "--k", "2", "--output", str(tmp_path / "out.csv"))
    assert code == 2
    assert refusal(err) == f"Every text of {pool} (column 'text') is empty. Give a file with texts."


@pytest.mark.parametrize("k", ["0", "-3"])
def test_k_below_one_is_refused(files: dict[str, Path], tmp_path: Path, k: str) -> None:
    code, _, err = run("--pool", str(files["pool"]), "--k", k, "--output", str(tmp_path / "out.csv"))
    assert code == 2
    assert refusal(err) == f"--k must be a positive number of texts, not {k}."
    assert not (tmp_path / "out.csv").exists()


def test_margin_without_a_model_is_refused_naming_model(files: dict[str, Path], tmp_path: Path) -> None:
    code, _, err = run(
        "--pool", str(files["pool"]), "--strategy", "margin", "--k", "2", "--output", str(tmp_path / "out.csv")
    )
    assert code == 2
    message = refusal(err)
    assert message.startswith("--strategy margin ranks texts by a classifier's uncertainty: give the current")
    assert "--model DIR" in message


def test_model_and_encoder_together_are_refused(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="Give --model .* or --encoder .*, not both"):
        suggest(files["pool"], SuggestOptions(k=2, model=str(tmp_path), encoder=str(tmp_path)))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("duplicate_cosine", 0.0, "--duplicate-cosine must be in (0, 1], not 0.0."),
        ("duplicate_cosine", 1.5, "--duplicate-cosine must be in (0, 1], not 1.5."),
        ("batch_size", 0, "--batch-size must be positive, not 0."),
    ],
)
def test_options_out_of_range_are_refused(field: str, value: float, message: str) -> None:
    options = SuggestOptions(k=2, **{field: value})
    with pytest.raises(UserInputError) as refused:
        options.check()
    assert str(refused.value) == message


# ------------------------------------------------------------------------------------- with a classifier


TINY_DUPLICATE_COSINE = 0.99
"""The tiny random encoder puts every pair of pool texts at a cosine of 0.87 to 0.97: at the default 0.95 most of
them would be near-duplicates of each other. Its tests count only cosines of 0.99 and more."""


@pytest.fixture(scope="module")
def trained(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny single-label sentiment folder (no temperature), as tests/inference/test_corpus.py trains it, but for
    a few steps only: the tests need its logits and vectors, not its accuracy."""
    root = tmp_path_factory.mktemp("suggest-model")
    options = ["--max-steps", "3", "--learning-rate", "3e-3", "--per-device-train-batch-size", "8"]
    options += ["--seed", "0", "--calibration", "none", "--disable-tqdm", "true"]
    return train_tiny_classifier(tiny_checkpoint, root, *options)


@pytest.fixture(scope="module")
def pool_scores(trained: Path) -> dict[int, dict]:
    """Each pool row's margin, vector and prediction by the trained folder, computed here."""
    classifier = load_classifier(trained, "cpu")
    rows = [n for n, r in enumerate(POOL, 1) if r["text"].strip()]
    texts = [POOL[n - 1]["text"] for n in rows]
    vectors = classifier_vectors(classifier, texts)
    margin = margins(classifier.logits(texts), classifier.task)
    predictions = classifier.predict(texts)
    return {
        n: {"margin": float(margin[i]), "vector": vectors.embeddings[i], "prediction": predictions[i]}
        for i, n in enumerate(rows)
    }


def test_with_a_model_the_default_is_cluster_margin_with_its_prediction(
    files: dict[str, Path], trained: Path, pool_scores: dict[int, dict], tmp_path: Path
) -> None:
    output = tmp_path / "round2.csv"
    code, out, err = run(
        "--pool", str(files["pool"]), "--labelled", str(files["labelled"]), "--model", str(trained), "--k", "4",
        "--duplicate-cosine", str(TINY_DUPLICATE_COSINE), "--output", str(output),
    )  # fmt: skip
    assert code == 0, err
    header, records = read_csv(output)
    assert header == [*HEADER, "predicted", "probability", "id", "text", "topic"]
    assert len(records) == 4
    assert {r["strategy"] for r in records} == {"cluster-margin"}
    assert out.startswith("4 texts suggested by cluster-margin from 27 eligible of 33 pool rows")
    for record in records:
        row = int(record["row"])
        assert row in ELIGIBLE_ROWS
        assert record["id"] == POOL[row - 1]["id"]
        expected = pool_scores[row]
        assert record["predicted"] == expected["prediction"]["label"]
        assert float(record["probability"]) == pytest.approx(expected["prediction"]["score"], abs=1e-6)
        assert float(record["score"]) == pytest.approx(expected["margin"], abs=1e-5)
        assert record["reason"].startswith(f"margin {expected['margin']:.3f}, the least certain of uncertain cluster")
    assert len({r["row"] for r in records}) == 4
    assert int(records[0]["row"]) == min(ELIGIBLE_ROWS, key=lambda row: pool_scores[row]["margin"])


def test_margin_strategy_lists_the_least_certain_texts_in_ascending_score(
    files: dict[str, Path], trained: Path, pool_scores: dict[int, dict]
) -> None:
    options = SuggestOptions(
        k=6,
        strategy="margin",
        model=str(trained),
        labelled=str(files["labelled"]),
        duplicate_cosine=TINY_DUPLICATE_COSINE,
        progress=False,
    )
    table = suggest(files["pool"], options).table
    scores = list(table["score"])
    assert scores == sorted(scores)
    assert len(table) == 6
    assert list(table.columns[:7]) == [*HEADER, "predicted", "probability"]
    for row, score in zip(table["row"], scores):
        assert score == pytest.approx(pool_scores[row]["margin"], abs=1e-5)
    picked = [pool_scores[row]["vector"] for row in table["row"]]
    cosines = np.array(picked) @ np.array(picked).T
    assert cosines[~np.eye(len(picked), dtype=bool)].max() < TINY_DUPLICATE_COSINE  # no near-duplicates among them
    # Without the near-duplicate filter: exactly the 6 smallest margins of the eligible rows, in order.
    options.duplicate_cosine = 1.0
    unfiltered = suggest(files["pool"], options).table
    by_margin = sorted(ELIGIBLE_ROWS, key=lambda row: pool_scores[row]["margin"])
    assert list(unfiltered["row"]) == by_margin[:6]


def test_with_every_pool_text_labelled_typiclust_suggests_nothing(files: dict[str, Path], tmp_path: Path) -> None:
    result = suggest(files["pool"], SuggestOptions(k=3, labelled=str(files["pool"]), progress=False))
    assert len(result.table) == 0 and result.eligible == 0
    assert result.counts == {"empty texts": 2, "already labelled": 31, "repeated texts": 0}


def test_with_every_pool_text_labelled_cluster_margin_suggests_nothing(files: dict[str, Path], trained: Path) -> None:
    options = SuggestOptions(k=3, model=str(trained), labelled=str(files["pool"]), progress=False)
    result = suggest(files["pool"], options)
    assert len(result.table) == 0 and result.eligible == 0


@pytest.fixture(scope="module")
def regression_model(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny regression folder (fractional labels), trained for one step."""
    root = tmp_path_factory.mktemp("suggest-regression")
    rows = [{"text": r["text"], "label": 0.25 if r["label"] == "positive" else 0.75} for r in sentiment_rows(6)]
    train = write_csv(root / "train.csv", rows)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(
            ["train", "--model", str(tiny_checkpoint), "--train-file", str(train), "--output-dir", str(root / "model")]
            + ["--max-steps", "1", "--disable-tqdm", "true"]
        )
    assert code == 0, err.getvalue()
    return root / "model"


def test_a_regression_model_is_refused_for_uncertainty(files: dict[str, Path], regression_model: Path) -> None:
    with pytest.raises(UserInputError, match="this model is a regression model. Use --strategy typiclust or random"):
        suggest(files["pool"], SuggestOptions(k=3, model=str(regression_model), progress=False))


@pytest.mark.parametrize("strategy", ["typiclust", "random"])
def test_a_regression_model_with_a_strategy_that_needs_no_margin(
    files: dict[str, Path], regression_model: Path, strategy: str
) -> None:
    result = suggest(files["pool"], SuggestOptions(k=3, strategy=strategy, model=str(regression_model), progress=False))
    assert len(result.table) == 3
    assert "predicted" not in result.table.columns
