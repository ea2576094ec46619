"""Hub datasets: split selection, ClassLabel names, and clear errors offline (the Hub call is faked)."""

from __future__ import annotations

import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from nlp_transfer.config.data import DataArguments
from nlp_transfer.data import reading as data_module
from nlp_transfer.data.prepare import load_data
from nlp_transfer.errors import UserInputError


def _fake_hub_dataset() -> DatasetDict:
    features = Features({"sentence": Value("string"), "label": ClassLabel(names=["negative", "positive"])})

    def split(n: int, offset: int) -> Dataset:
        rows = {"sentence": [f"sentence number {offset + i}" for i in range(n)], "label": [i % 2 for i in range(n)]}
        return Dataset.from_dict(rows, features=features)

    return DatasetDict({"train": split(20, 0), "validation": split(6, 100), "extra": split(4, 200)})


@pytest.fixture()
def fake_hub(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    calls: list[tuple] = []

    def fake_load_dataset(name, config_name=None, **kwargs):
        calls.append((name, config_name))
        return _fake_hub_dataset()

    monkeypatch.setattr(data_module, "load_dataset", fake_load_dataset)
    return calls


def test_hub_dataset_uses_named_config_splits_and_class_label_names(fake_hub: list[tuple]) -> None:
    prepared = load_data(DataArguments(dataset_name="org/reviews", dataset_config_name="en", test_split="extra"))
    assert fake_hub == [("org/reviews", "en")]
    assert prepared.schema.names == ["negative", "positive"]
    assert {name: len(split) for name, split in prepared.splits.items()} == {"train": 20, "validation": 6, "test": 4}
    assert prepared.sources["validation"] == "org/reviews split 'validation'"
    assert prepared.text_column == "sentence"
    assert prepared.splits["train"]["labels"][:4] == [0, 1, 0, 1]


def test_hub_dataset_unknown_split_lists_the_splits(fake_hub: list[tuple]) -> None:
    with pytest.raises(UserInputError, match=r"no split 'dev'.*train, validation, extra"):
        load_data(DataArguments(dataset_name="org/reviews", validation_split="dev"))


def test_hub_dataset_and_local_files_are_exclusive(fake_hub: list[tuple], tmp_path) -> None:
    with pytest.raises(UserInputError, match="either --dataset-name or local files"):
        load_data(DataArguments(dataset_name="org/reviews", train_file=str(tmp_path / "x.csv")))


def test_uncached_hub_dataset_offline_is_a_clear_error() -> None:
    # No fake: the real datasets call, with HF_DATASETS_OFFLINE=1 set by conftest.
    with pytest.raises(UserInputError, match=r"Could not load Hub dataset 'nlp-transfer-tests/no-such-data'.*OFFLINE"):
        load_data(DataArguments(dataset_name="nlp-transfer-tests/no-such-data"))


def test_a_run_on_a_hub_dataset_names_it_in_the_card(fake_hub: list[tuple], tmp_path, tiny_checkpoint) -> None:
    from huggingface_hub import ModelCard

    from nlp_transfer import RunConfig, fine_tune

    out = tmp_path / "out"
    options = {
        "model": str(tiny_checkpoint),
        "dataset_name": "org/reviews",
        "dataset_config_name": "en",
        "output_dir": str(out),
        "num_train_epochs": 1,
        "disable_tqdm": True,
    }
    fine_tune(RunConfig.from_dict(options))
    card = ModelCard.load(out / "README.md")
    assert card.data.datasets == ["org/reviews"]
    assert {(r.dataset_type, r.dataset_config, r.dataset_split) for r in card.data.eval_results} == {
        ("org/reviews", "en", "validation")
    }
