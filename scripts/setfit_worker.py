"""SetFit 1.2 at its defaults on one training file, scored on one test file: the peer of benchmark_fewshot.py.

Runs in a virtualenv of its own (setfit is never a dependency of nlp-transfer), offline, and prints one JSON
line: test accuracy, macro-F1 and the training time.

    /path/to/setfit-venv/bin/python scripts/setfit_worker.py --model MINILM_FOLDER \
        --train-file draw.csv --test-file test.csv --seed 0
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from datasets import load_dataset
from setfit import SetFitModel, Trainer, TrainingArguments
from sklearn.metrics import accuracy_score, f1_score


def _plain(value: object) -> object:
    """A predicted label as a Python value (SetFit returns a tensor for integer labels)."""
    return value.item() if hasattr(value, "item") else value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="Folder of the sentence-transformers body.")
    parser.add_argument("--train-file", required=True)
    parser.add_argument("--test-file", required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = load_dataset("csv", data_files={"train": args.train_file, "test": args.test_file})
    # Integer or string labels: SetFit's default head (scikit-learn's LogisticRegression) predicts them as given.
    model = SetFitModel.from_pretrained(args.model)
    with tempfile.TemporaryDirectory() as checkpoints:  # SetFit saves checkpoints; keep them out of the cwd
        arguments = TrainingArguments(output_dir=checkpoints, seed=args.seed)
        trainer = Trainer(model=model, args=arguments, train_dataset=data["train"])
        started = time.perf_counter()
        trainer.train()
        train_s = time.perf_counter() - started
    predictions = [str(_plain(p)) for p in model.predict(data["test"]["text"])]
    truth = [str(label) for label in data["test"]["label"]]
    print(
        json.dumps(
            {
                "accuracy": accuracy_score(truth, predictions),
                "macro_f1": f1_score(truth, predictions, average="macro"),
                "train_s": train_s,
            }
        )
    )


if __name__ == "__main__":
    main()
