"""--eval-file NAME=FILE (repeatable): the final model scored on more labelled files, in metrics.json and grids."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import sentiment_rows, write_csv

from nlp_transfer.cli.app import main
from nlp_transfer.config.data import DataArguments
from nlp_transfer.config.run import RunConfig
from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.record import RunRecord
from nlp_transfer.inference.predict import load_classifier

FAST = {"disable_tqdm": True, "learning_rate": 1e-3, "num_train_epochs": 1}


def test_eval_file_flags_accumulate_and_name_their_files() -> None:
    config = RunConfig.from_args(["--eval-file", "amazon=a.csv", "--eval-file", "reviews/imdb.csv"])
    assert config.data.eval_files() == {"amazon": "a.csv", "imdb": "reviews/imdb.csv"}
    assert RunConfig.from_dict({"eval_file": ["yelp=y.csv"]}).data.eval_files() == {"yelp": "y.csv"}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["test=t.csv"], "name 'test' is not usable"),
        (["my-set=t.csv"], "name 'my-set' is not usable"),
        (["a=x.csv", "a=y.csv"], "names 'a' twice"),
        (["a="], "names no file"),
    ],
)
def test_bad_eval_file_names_are_refused(items: list[str], message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        DataArguments(eval_file=items).check()


def test_a_missing_eval_file_is_named(tmp_path: Path, sentiment_files: dict[str, Path]) -> None:
    from nlp_transfer.data.prepare import load_data

    args = DataArguments(train_file=str(sentiment_files["train"]), eval_file=[f"gone={tmp_path / 'gone.csv'}"])
    with pytest.raises(UserInputError, match="gone.csv does not exist"):
        load_data(args)


def test_each_eval_file_is_scored_like_a_hand_computation(
    tmp_path: Path, tiny_checkpoint: Path, sentiment_files: dict[str, Path], capsys: pytest.CaptureFixture
) -> None:
    other = write_csv(tmp_path / "other.csv", sentiment_rows(5)[:7])
    shifted = [{"text": row["text"].upper(), "label": row["label"]} for row in sentiment_rows(3)]
    upper = write_csv(tmp_path / "upper.csv", shifted)
    output = tmp_path / "run"
    argv = ["train", "--model", str(tiny_checkpoint), "--train-file", str(sentiment_files["train"])]
    argv += ["--validation-file", str(sentiment_files["validation"]), "--output-dir", str(output)]
    argv += ["--eval-file", f"other={other}", "--eval-file", str(upper)]
    argv += [f"--{name.replace('_', '-')}={value}" for name, value in FAST.items()]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "other" in printed and "upper" in printed

    record = RunRecord.load(output)
    assert list(record.eval_files) == ["other", "upper"]
    assert list(record.evaluated_splits) == ["validation", "other", "upper"]
    classifier = load_classifier(output)
    for name, path in (("other", other), ("upper", upper)):
        with open(path, newline="") as handle:
            rows = [(row["text"], row["label"]) for row in csv.DictReader(handle)]
        predictions = classifier.predict([text for text, _ in rows])
        expected = sum(p["label"] == label for p, (_, label) in zip(predictions, rows, strict=True)) / len(rows)
        assert record.eval_files[name]["accuracy"] == pytest.approx(expected)
        assert record.eval_files[name]["num_examples"] == len(rows)
    assert json.loads((output / "metrics.json").read_text())["eval_files"]["other"]["accuracy"] == pytest.approx(
        record.eval_files["other"]["accuracy"]
    )


def test_a_grid_reports_each_eval_file(tmp_path: Path, tiny_checkpoint: Path, sentiment_files: dict[str, Path]) -> None:
    from nlp_transfer.experiments.grid import expand_grid
    from nlp_transfer.experiments.runner import run_grid

    other = write_csv(tmp_path / "other.csv", sentiment_rows(3))
    grid = expand_grid(
        {
            "model": str(tiny_checkpoint),
            "train_file": str(sentiment_files["train"]),
            "validation_file": str(sentiment_files["validation"]),
            "eval_file": [f"other={other}"],
            "seeds": [0],
            "output_dir": str(tmp_path / "grid"),
            **FAST,
        }
    )
    outcome = run_grid(grid, progress=False)
    row = outcome.rows[0]
    assert row["splits"] == "eval;other" and "other_accuracy" in row
    assert (
        "| strategy | train size | validation accuracy | other accuracy |" in (grid.folder / "summary.md").read_text()
    )
