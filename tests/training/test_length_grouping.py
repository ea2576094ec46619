"""Training batches grouped by length (the default) pad far less and change no metric beyond seed noise."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
import torch

from nlp_transfer import RunConfig, fine_tune
from nlp_transfer.data.reading import demo_data_files
from nlp_transfer.errors import UserInputError

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


def test_the_grouped_order_depends_on_seed_and_epoch_only() -> None:
    # A resumed run draws the resumed epoch's order before Trainer restores the random state: the order must
    # not come from torch's global generator, or the batches it skips are not those the killed run trained.
    from nlp_transfer.training.trainer import SeededLengthGroupedSampler

    lengths = [(7 * i) % 23 + 1 for i in range(64)]
    sampler = SeededLengthGroupedSampler(4, lengths, seed=3)

    def order(epoch: int, global_seed: int) -> list[int]:
        torch.manual_seed(global_seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert order(2, global_seed=0) == order(2, global_seed=99)
    assert order(2, global_seed=0) != order(1, global_seed=0)
    assert sorted(order(1, global_seed=0)) == list(range(64))
    batches = [order(1, 0)[i : i + 4] for i in range(0, 64, 4)]
    padding = sum(4 * max(lengths[j] for j in b) - sum(lengths[j] for j in b) for b in batches)
    assert padding < 0.5 * sum(lengths)  # grouped: far less padding than the lengths' spread would give


def test_a_mistyped_sampling_strategy_is_refused() -> None:
    with pytest.raises(UserInputError, match=r"'group-by-length'; choose one of \['group_by_length', 'random'"):
        RunConfig.from_dict({"train_sampling_strategy": "group-by-length", "output_dir": "unused"})
