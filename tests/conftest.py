"""Shared fixtures: offline mode, a tiny random BERT checkpoint, CSV writers, the shared real data."""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path
from types import ModuleType

# Offline before anything imports huggingface_hub: no test may reach the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The CLI caches descriptions of its parsers (nlp_transfer.cli.parser_cache): in a folder of the test session's own.
os.environ["NLP_TRANSFER_CACHE"] = tempfile.mkdtemp(prefix="nlp-transfer-test-cache-")

import pytest  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def run_cli(*argv: str) -> tuple[int, str, str]:
    """`nlp-transfer ARGV` in this process: (exit code, stdout, stderr)."""
    import contextlib
    import io

    from nlp_transfer.cli.app import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def load_script(name: str) -> ModuleType:
    """scripts/NAME.py as a module (the scripts are not a package): its functions and constants, for testing."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def refusal(err: str) -> str:
    """The one error paragraph on stderr after 'error: ', joined into one line (the CLI wraps it at 100 characters)."""
    assert "Traceback" not in err
    assert err.count("error: ") == 1, err
    return " ".join(err[err.index("error: ") + len("error: ") :].split())


def write_csv(path: Path, rows: list[dict], fieldnames: list[str] | None = None) -> Path:
    """Write `rows` as a CSV with a header (Python's csv module quoting)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fieldnames = fieldnames or list(rows[0])
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    return path


POSITIVE = ["great product, works well", "love it, excellent quality", "very happy with this", "superb and fast"]
NEGATIVE = ["terrible, broke in a day", "awful quality, very sad", "bad purchase, do not buy", "slow and useless"]


# Three topics in clearly different words, 20 texts each: a probe on the bundled MiniLM separates them (labels tests).
SPORTS = [
    "The striker scored twice in the second half to win the derby",
    "Our goalkeeper saved a penalty in the final minute of the match",
    "The tennis final went to five sets before the champion prevailed",
    "She broke the national record in the 400 metres at the athletics meet",
    "The basketball team lost on a buzzer beater in overtime",
    "The cyclist took the yellow jersey after a brutal mountain stage",
    "A late try gave the rugby side a narrow victory at home",
    "The coach was sacked after five straight league defeats",
    "Fans queued all night for tickets to the cup semi-final",
    "The boxer defended his title with a knockout in round three",
    "The quarterback threw three touchdown passes in the first half",
    "The marathon winner crossed the line in just over two hours",
    "A hat-trick from the winger sealed promotion for the club",
    "The swimmer took gold in the 200 metres butterfly",
    "Rain delayed the cricket test match for most of the afternoon",
    "The golfer sank a long putt on the eighteenth to win the open",
    "The referee sent off two players in a bad-tempered derby",
    "The ice hockey team clinched the title in a penalty shootout",
    "The sprinter pulled a hamstring in the relay heats",
    "The manager praised his defence after a goalless draw away from home",
]
COOKING = [
    "Whisk the eggs with sugar until pale, then fold in the flour",
    "Simmer the tomato sauce for forty minutes with garlic and basil",
    "Knead the bread dough for ten minutes and let it rise overnight",
    "Roast the chicken at 200 degrees until the skin is golden",
    "Toast the cumin seeds in a dry pan before grinding them",
    "Season the risotto with parmesan and a knob of butter at the end",
    "Marinate the tofu in soy sauce, ginger and sesame oil",
    "Blanch the green beans, then plunge them into iced water",
    "Caramelise the onions slowly over low heat for an hour",
    "Line the cake tin with baking paper and preheat the oven",
    "Stir the custard constantly so that it does not curdle",
    "Fry the shallots until crisp and drain them on kitchen paper",
    "Add a pinch of salt to the pasta water before it boils",
    "Let the steak rest for five minutes before slicing it",
    "Chop the coriander finely and scatter it over the curry",
    "Bake the pastry blind with ceramic beans for fifteen minutes",
    "Reduce the red wine until the sauce coats the back of a spoon",
    "Grate the zest of a lemon into the batter for freshness",
    "Steam the dumplings in a bamboo basket for twelve minutes",
    "Melt the chocolate gently over a pan of simmering water",
]
FINANCE = [
    "The central bank raised interest rates by a quarter point",
    "Shares of the chipmaker fell eight percent after weak earnings guidance",
    "Bond yields climbed as investors priced in stubborn inflation",
    "The company announced a share buyback worth two billion dollars",
    "Quarterly revenue beat analyst estimates on strong cloud sales",
    "The currency slid to a record low against the dollar",
    "Mortgage approvals dropped for the third month in a row",
    "The startup raised a Series B round led by a venture fund",
    "Oil prices surged after the producers agreed to cut output",
    "The pension fund shifted assets from equities into bonds",
    "The stock index closed at an all-time high on Friday",
    "The bank set aside more money for bad loans this quarter",
    "Investors fled to gold as recession fears grew",
    "The retailer cut its profit forecast for the full year",
    "Inflation eased to three percent in the latest figures",
    "The merger values the combined company at forty billion euros",
    "Hedge funds increased their short positions in the sector",
    "The treasury sold ten-year notes at a higher yield than expected",
    "Dividend payouts rose as corporate cash piles swelled",
    "The credit rating agency downgraded the country's debt",
]


def train_tiny_classifier(checkpoint: Path, root: Path, *options: str) -> Path:
    """`nlp-transfer train` of the tiny sentiment set (24 training, 8 validation rows) from `checkpoint` into
    root/model with `options`; the folder."""
    import contextlib
    import io

    from nlp_transfer.cli.app import main

    train = write_csv(root / "train.csv", sentiment_rows(12))
    validation = write_csv(root / "validation.csv", sentiment_rows(4))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(
            ["train", "--model", str(checkpoint), "--train-file", str(train), "--validation-file", str(validation)]
            + ["--output-dir", str(root / "model"), *options]
        )
    assert code == 0, err.getvalue()
    return root / "model"


def sentiment_rows(n_per_class: int = 12) -> list[dict]:
    """A tiny two-class data set with word labels, alternating classes."""
    rows = []
    for i in range(n_per_class):
        rows.append({"text": f"{POSITIVE[i % len(POSITIVE)]} {i}", "label": "positive"})
        rows.append({"text": f"{NEGATIVE[i % len(NEGATIVE)]} {i}", "label": "negative"})
    return rows


@pytest.fixture()
def sentiment_files(tmp_path: Path) -> dict[str, Path]:
    """train.csv (24 rows) and validation.csv (8 rows) of the tiny sentiment set."""
    return {
        "train": write_csv(tmp_path / "data" / "train.csv", sentiment_rows(12)),
        "validation": write_csv(tmp_path / "data" / "validation.csv", sentiment_rows(4)),
    }


@pytest.fixture(scope="session")
def bundled_tokenizer_path() -> Path:
    from nlp_transfer.modeling.checkpoints import bundled_model_path

    return bundled_model_path()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory, bundled_tokenizer_path: Path) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) with the bundled WordPiece tokenizer, saved as a folder."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(bundled_tokenizer_path)
    tokenizer.model_max_length = 128
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture()
def shared_data() -> Path:
    """../shared/data with the real public data sets; tests using it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (only present beside the project's own checkout)")
    return SHARED_DATA


WITHOUT_PACKAGE = """
import json, sys
sys.modules["nlp_transfer"] = None  # as where the package is not installed: any import of it fails
from transformers import pipeline
classify = pipeline("text-classification", model=sys.argv[1], trust_remote_code=True, device="cpu", top_k=None)
print(json.dumps(classify(json.loads(sys.argv[2]))))
"""


def assert_loads_without_package(folder: Path, texts: list[str], tmp_path: Path) -> None:
    """`pipeline(..., trust_remote_code=True)` in a process where nlp_transfer cannot be imported loads `folder` and
    gives every text `load_classifier`'s probabilities, to 1e-5."""
    import json
    import os
    import subprocess
    import sys

    from nlp_transfer import load_classifier

    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_PACKAGE, str(folder), json.dumps(texts)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    theirs = [{item["label"]: item["score"] for item in row} for row in rows]
    ours = [p["scores"] for p in load_classifier(folder, device="cpu").predict(texts)]
    for mine, other in zip(ours, theirs, strict=True):
        assert mine.keys() == other.keys()
        assert all(mine[label] == pytest.approx(other[label], abs=1e-5) for label in mine)
