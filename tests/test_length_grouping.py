"""Training batches grouped by length (the default) pad far less and change no metric beyond seed noise."""

from __future__ import annotations

import statistics
from pathlib import Path

from nlp_transfer import RunConfig, fine_tune
from nlp_transfer.data import demo_data_files

SEEDS = (0, 1, 2)


def _run(checkpoint: Path, tmp_path: Path, order: str, seed: int):
    files = demo_data_files()  # 300 support messages of 3 to 40 words, 3 classes
    options = {
        "model": str(checkpoint),
        "train_file": files["train"],
        "validation_file": files["validation"],
        "output_dir": str(tmp_path / f"{order}-{seed}"),
        "train_sampling_strategy": order,
        "seed": seed,
        "learning_rate": 1e-3,
        "num_train_epochs": 3,
        "eval_strategy": "no",
        "save_strategy": "no",
        "load_best_model_at_end": False,
        "disable_tqdm": True,
    }
    return fine_tune(RunConfig.from_dict(options)).record


def test_length_grouped_batches_pad_less_and_score_within_seed_noise(tiny_checkpoint: Path, tmp_path: Path) -> None:
    grouped = [_run(tiny_checkpoint, tmp_path, "group_by_length", seed) for seed in SEEDS]
    shuffled = [_run(tiny_checkpoint, tmp_path, "random", seed) for seed in SEEDS]
    assert grouped[0].hyperparameters.train_sampling_strategy == "group_by_length"

    # The same examples and epochs either way: only the padding differs.
    for a, b in zip(grouped, shuffled, strict=True):
        assert a.training_cost.sequences == b.training_cost.sequences
        assert a.training_cost.real_tokens == b.training_cost.real_tokens
        pads = [cost.padded_tokens - cost.real_tokens for cost in (a.training_cost, b.training_cost)]
        assert pads[0] < 0.5 * pads[1], pads  # demo data: about 7% of the tokens are padding, against 22%

    def spread(records, metric: str) -> tuple[float, float]:
        values = [record.eval[metric] for record in records]
        return statistics.mean(values), statistics.stdev(values)

    for metric in ("accuracy", "loss"):
        (mean_grouped, sd_grouped), (mean_shuffled, sd_shuffled) = spread(grouped, metric), spread(shuffled, metric)
        noise = 2 * max(sd_grouped, sd_shuffled) + 0.02
        assert abs(mean_grouped - mean_shuffled) <= noise, (metric, mean_grouped, mean_shuffled, noise)
