"""The data argument group: `DataArguments` (where the labelled texts come from and how to read them), with the
names of its choices and the rules for --eval-file names."""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from nlp_transfer.config.checks import option_flag
from nlp_transfer.config.long_text import LongTextSettings
from nlp_transfer.errors import UserInputError

TaskName = Literal["auto", "single_label", "multi_label", "regression"]
TrainSampleName = Literal["random", "stratified"]
LongTextMode = Literal["truncate-head", "truncate-tail", "head-tail", "chunk"]
ChunkAggregate = Literal["mean", "max", "first", "attention"]
EVAL_FILE_NAME = re.compile(r"[A-Za-z0-9_]+")
RESERVED_SPLIT_NAMES = ("train", "validation", "test", "eval")


@dataclass
class DataArguments:
    """Where the labelled texts come from and how to read them."""

    _argument_group_name = "data"

    dataset_name: str | None = field(
        default=None,
        metadata={"help": "Hub dataset id (e.g. nyu-mll/glue). Give --dataset-config-name and split names."},
    )
    dataset_config_name: str | None = field(
        default=None, metadata={"help": "Configuration of --dataset-name (e.g. sst2)."}
    )
    train_split: str = field(default="train", metadata={"help": "Split of --dataset-name to train on."})
    validation_split: str | None = field(
        default=None,
        metadata={
            "help": "Split of --dataset-name to validate on (default: 'validation' when the dataset has "
            "one, else carved from train)."
        },
    )
    test_split: str | None = field(
        default=None, metadata={"help": "Split of --dataset-name to report final test metrics on."}
    )
    train_file: str | None = field(
        default=None,
        metadata={
            "help": "Local training file: .csv, .tsv, .json, .jsonl or .parquet. Without any data option "
            "the package's own demo data (customer-support messages, 3 classes) is used."
        },
    )
    validation_file: str | None = field(
        default=None,
        metadata={"help": "Local validation file. Without one, --validation-fraction of train is held out."},
    )
    test_file: str | None = field(
        default=None, metadata={"help": "Local test file; its metrics go to metrics.json under 'test'."}
    )
    eval_file: list[str] | None = field(
        default=None,
        metadata={
            "help": "More labelled files to score the final model on, each as NAME=FILE (or FILE, named by its "
            "stem); repeat the flag for several, e.g. --eval-file amazon=amazon.csv --eval-file imdb=imdb.csv "
            "to see how a model trained on one domain does on others. Each gets its metrics in metrics.json "
            "under eval_files.NAME.",
            "action": "extend",
        },
    )
    text_column: str | None = field(
        default=None,
        metadata={
            "help": "Column with the text (default: 'text' or 'sentence'; or 'sentence1' + 'sentence2' "
            "as a pair when those exist)."
        },
    )
    text_pair_column: str | None = field(
        default=None,
        metadata={
            "help": "Second text column for sentence-pair tasks (paraphrase, entailment, similarity). "
            "The two texts are encoded as a pair ([CLS] a [SEP] b [SEP]), not joined."
        },
    )
    label_column: str | None = field(
        default=None, metadata={"help": "Column with the label (default: 'label' or 'labels')."}
    )
    encoding: str = field(
        default="utf-8",
        metadata={
            "help": "Text encoding of the data files (CSV, TSV, JSON, JSONL). Default utf-8; e.g. latin-1 or "
            "cp1252 for files saved by older spreadsheet programs."
        },
    )
    label_separator: str | None = field(
        default=None,
        metadata={
            "help": "Multi-label data in CSV/TSV: write all labels of a row in one cell joined by this "
            "separator, e.g. 'joy;love' with --label-separator ';' (an empty cell means no label). "
            "JSON/JSONL/Parquet lists need no separator. Setting it implies --task multi_label."
        },
    )
    class_names: str | None = field(
        default=None,
        metadata={
            "help": "Comma-separated names for integer labels 0..N-1, e.g. 'negative,positive', saved "
            "as id2label so predictions say 'positive' instead of '1'."
        },
    )
    task: TaskName = field(
        default="auto",
        metadata={
            "help": "auto: inferred from the labels (integers or strings -> single_label; lists or "
            "--label-separator -> multi_label; non-integer numbers -> regression). Force it when the "
            "inference is wrong, e.g. --task regression for integer scores."
        },
    )
    validation_fraction: float = field(
        default=0.1,
        metadata={
            "help": "Share of train held out for validation when no validation data is given; "
            "stratified by label for single-label tasks, fixed by --seed."
        },
    )
    max_train_samples: int | None = field(
        default=None,
        metadata={"help": "Train on this many examples, a fixed random subset (same --seed, same subset)."},
    )
    train_sample: TrainSampleName = field(
        default="random",
        metadata={
            "help": "How --max-train-samples draws: random, or stratified (each label keeps its share of "
            "the training set; single-label tasks, else random)."
        },
    )
    split_seed: int | None = field(
        default=None,
        metadata={
            "help": "Seed of the validation split carved from train and of the --max-eval-samples subsets "
            "(default: --seed). Fix it to score runs of different seeds on one validation set; `nlp-transfer "
            "compare` does."
        },
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Evaluate on this many validation/test examples (fixed subset)."}
    )
    max_length: int | None = field(
        default=None,
        metadata={
            "help": "Truncate encoded texts to this many tokens (default: the tokenizer's limit, capped "
            "at 512). Batches are padded to their longest text, never to a fixed length."
        },
    )
    long_text: LongTextMode = field(
        default="truncate-head",
        metadata={
            "help": "How a text longer than --max-length is read. truncate-head (default): its first tokens; "
            "truncate-tail: its last tokens; head-tail: the first quarter of the budget from its start and the "
            "rest from its end (Sun et al. 2019: head 128 + tail 382 of 512 read long reviews best). Saved with "
            "the model: predict and evaluate read texts the same way. Each split's token lengths and share of "
            "truncated texts are logged and kept in metrics.json (long_text). chunk: all of every text, in windows "
            "of --max-length tokens that share --chunk-stride tokens; each window trains as an example with its "
            "text's label, and evaluation and prediction combine a text's windows (--chunk-aggregate) into one "
            "answer per text: the metrics are per text, never per window."
        },
    )
    chunk_stride: int = field(
        default=0,
        metadata={
            "help": "With --long-text chunk: the tokens consecutive windows share, so that a sentence cut at a "
            "window's edge is read whole in the next (e.g. 64 of 512). 0: windows side by side."
        },
    )
    chunk_aggregate: ChunkAggregate = field(
        default="mean",
        metadata={
            "help": "With --long-text chunk: how a text's window logits become its logits. mean (default) and max: "
            "element-wise; first: the first window only; attention: a weighted mean, each window weighted by its "
            "own confidence (softmax over windows of the log-probability of its top class), no extra weights."
        },
    )
    drop_label_issues: str | None = field(
        default=None,
        metadata={
            "help": "A CSV written by 'nlp-transfer audit' (or any CSV with a 'row' column of training-file row "
            "numbers, 1 = the first row after the header): train without those rows. Edit the file first to keep "
            "rows whose label you checked and found right. Each listed row's text must still match the file."
        },
    )
    drop_invalid_rows: bool = field(
        default=False,
        metadata={"help": "Drop rows with an empty text or missing label instead of stopping with an error."},
    )

    def check(self) -> None:
        """What can be refused before any file is read: conflicting sources and values outside their range."""
        files = (self.train_file, self.validation_file, self.test_file)
        if self.dataset_name and any(files):
            raise UserInputError("Give either --dataset-name or local files (--train-file ...), not both.")
        if not self.dataset_name and not self.train_file and any(files):
            raise UserInputError("--validation-file/--test-file need a --train-file as well.")
        if not 0 < self.validation_fraction < 1:
            raise UserInputError(
                f"--validation-fraction must be between 0 and 1 (exclusive), not {self.validation_fraction}."
            )
        self.eval_files()
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise UserInputError(f"{option_flag(name)} must be a positive number, not {value}.")
        if self.max_length is not None and self.max_length <= 0:
            raise UserInputError(f"--max-length must be a positive number of tokens, not {self.max_length}.")
        self.long_text_settings(max_length=self.max_length or 512).check()  # stride, aggregation, mode
        if self.long_text != "truncate-head" and self.text_pair_column:
            raise UserInputError(
                f"--long-text {self.long_text} reads single texts, and --text-pair-column {self.text_pair_column} "
                "makes pairs: join the two texts into one column, or use --long-text truncate-head."
            )

    def long_text_settings(self, max_length: int) -> LongTextSettings:
        """How texts longer than `max_length` (the resolved --max-length) are read: mode, stride, aggregation."""
        return LongTextSettings(self.long_text, max_length, self.chunk_stride, self.chunk_aggregate)

    def eval_files(self) -> dict[str, str]:
        """--eval-file as {name: path}; a name is letters, digits and '_', unique, and not a split of the run."""
        files: dict[str, str] = {}
        for item in self.eval_file or []:
            name, separator, path = item.partition("=")
            if not separator:
                name, path = Path(item).stem, item
            if not path:
                raise UserInputError(f"--eval-file {item!r} names no file: write NAME=FILE, e.g. imdb=imdb.csv.")
            if not EVAL_FILE_NAME.fullmatch(name) or name in RESERVED_SPLIT_NAMES:
                raise UserInputError(
                    f"--eval-file name {name!r} is not usable: use letters, digits and '_' (not "
                    f"{', '.join(RESERVED_SPLIT_NAMES)}), as in --eval-file imdb=imdb.csv."
                )
            if name in files:
                raise UserInputError(f"--eval-file names {name!r} twice; give each file its own NAME=FILE.")
            files[name] = path
        return files
