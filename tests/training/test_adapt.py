"""`adapt`: masked-LM pretraining on unlabelled domain text lowers held-out loss; train takes the result."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from nlp_transfer.cli.app import main
from nlp_transfer.evaluation.record import RunRecord
from nlp_transfer.training.adapt import read_domain_texts

CLINICAL = [
    "patient presents with acute chest pain radiating to the left arm",
    "ecg shows st elevation in leads two three and avf",
    "troponin elevated, started on aspirin and heparin",
    "history of hypertension and type two diabetes mellitus",
    "patient denies shortness of breath or palpitations",
    "blood pressure one forty over ninety, heart rate eighty eight",
    "discharged on beta blocker statin and aspirin",
    "follow up with cardiology in two weeks",
]


def _text_file(tmp_path: Path, copies: int = 6) -> Path:
    """Distinct notes (pairs of the sentences above), repeated `copies` times: adapt keeps each text once."""
    notes = [f"{first}; {second}" for first in CLINICAL for second in CLINICAL if first != second]
    path = tmp_path / "notes.txt"
    path.write_text("\n".join(notes * copies) + "\n\n", encoding="utf-8")
    return path


def _adapt_argv(model: Path | str, text_file: Path, output: Path, *extra: str) -> list[str]:
    argv = ["adapt", "--model", str(model), "--text-file", str(text_file), "--output-dir", str(output)]
    return [*argv, "--disable-tqdm", "true", *extra]


def test_adapt_lowers_held_out_masked_lm_loss_and_train_takes_the_result(
    tmp_path: Path,
    tiny_checkpoint: Path,
    sentiment_files: dict[str, Path],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture,
) -> None:
    output = tmp_path / "adapted"
    argv = _adapt_argv(tiny_checkpoint, _text_file(tmp_path), output, "--learning-rate", "3e-3")
    with caplog.at_level(logging.WARNING, logger="nlp_transfer"):
        assert main([*argv, "--num-train-epochs", "10", "--per-device-train-batch-size", "8"]) == 0
    assert "has no masked-LM head" in caplog.text and "tied to the input embeddings" in caplog.text
    record = json.loads((output / "adapt.json").read_text())
    before, after = record["held_out_before"], record["held_out_after"]
    assert after["loss"] < before["loss"] - 1.0, (before, after)
    assert record["texts"] == {"train": 50, "held_out": 6}  # 56 distinct notes, 10% held out; repeats dropped
    assert record["new_masked_lm_head"] is True
    assert "Held-out masked-LM loss" in capsys.readouterr().out
    assert (output / "model.safetensors").is_file() and not list(output.glob("checkpoint-*"))

    run = tmp_path / "classifier"
    train = ["train", "--model", str(output), "--train-file", str(sentiment_files["train"])]
    train += ["--validation-file", str(sentiment_files["validation"]), "--output-dir", str(run)]
    assert main([*train, "--num-train-epochs", "1", "--disable-tqdm", "true"]) == 0
    assert RunRecord.load(run).trainable_parameters > 0


def test_adapting_a_sentence_transformers_checkpoint_keeps_its_pooling_files(tmp_path: Path) -> None:
    from nlp_transfer.modeling.checkpoints import bundled_model_path

    output = tmp_path / "minilm-clinical"
    argv = _adapt_argv("minilm", _text_file(tmp_path, copies=1), output, "--max-steps", "1")
    assert main(argv) == 0
    source = json.loads((bundled_model_path() / "modules.json").read_text())
    assert json.loads((output / "modules.json").read_text()) == source
    assert (output / "1_Pooling" / "config.json").is_file()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--held-out-fraction", "1.5"], "--held-out-fraction must be between 0 and 1"),
        (["--mlm-probability", "0"], "--mlm-probability must be between 0 and 1"),
        (["--encoding", "latin-9x"], "--encoding 'latin-9x' is not a text encoding Python knows"),
    ],
)
def test_bad_adapt_options_are_refused(
    tmp_path: Path, tiny_checkpoint: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    assert main([*_adapt_argv(tiny_checkpoint, _text_file(tmp_path), tmp_path / "out"), *extra]) == 2
    assert message in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "out").exists()


def test_a_text_file_with_one_text_is_refused(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture
) -> None:
    one = tmp_path / "one.txt"
    one.write_text("only one line\n\nonly one line\n")
    assert main(_adapt_argv(tiny_checkpoint, one, tmp_path / "out")) == 2
    assert "has 1 distinct non-empty texts; adapting needs at least 10" in " ".join(capsys.readouterr().err.split())


def test_the_text_file_is_read_in_its_encoding(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture
) -> None:
    """A Latin-1 file: refused as UTF-8 with the line and bytes named, read word for word with --encoding latin-1."""
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Le café était fermé.\nLa crème brûlée, délicieuse.\n".encode("latin-1"))
    assert main(_adapt_argv(tiny_checkpoint, latin, tmp_path / "out")) == 2
    message = " ".join(capsys.readouterr().err.split())
    assert "is not valid utf-8 text: line 1 has the byte(s) 0xe9" in message and "--encoding latin-1" in message
    assert not (tmp_path / "out").exists()
    assert read_domain_texts(str(latin), None, "latin-1") == ["Le café était fermé.", "La crème brûlée, délicieuse."]
