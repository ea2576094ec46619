"""`nlp-transfer predict --file --backend ray`: Ray Data reads the file and Ray actors predict it, and the output
file is the local backend's, byte for byte (same columns, rows, order; the same skipped rows reported).

One local Ray of 2 CPUs for the whole module (it takes seconds to start on a small machine)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import sentiment_rows, write_csv

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'nlp-transfer[ray]')")
pytest.importorskip("ray.data", reason="Ray is installed without Ray Data")

from nlp_transfer.cli.app import main  # noqa: E402

# Ray Data's own: its context's copy reads its deprecated settings.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")

FAST_FLAGS = ["--num-train-epochs", "1", "--learning-rate", "1e-3", "--disable-tqdm", "true"]
ROWS = 50
EMPTY_ROWS = [5, 14, 23, 32, 41, 50]
"""File rows (1-based) whose text is empty: skipped, and reported by their row in the file."""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> Path:
    """One 1-epoch run of the tiny model: a folder with a trained head."""
    root = tmp_path_factory.mktemp("ray-corpus-run")
    files = [write_csv(root / name, sentiment_rows(6)) for name in ("train.csv", "validation.csv")]
    out = root / "out"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(
            ["train", "--model", str(tiny_checkpoint), "--train-file", str(files[0]), "--validation-file"]
            + [str(files[1]), "--output-dir", str(out), *FAST_FLAGS]
        )
    assert code == 0, err.getvalue()
    return out


@pytest.fixture(scope="module")
def local_ray() -> object:
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """50 rows, as CSV and as JSON Lines: an id (CSV: zero-padded text; JSON: numbers and texts), texts of several
    lengths, some empty, another column."""
    rows = [
        {
            "id": f"{row:03d}",
            "text": "" if row in EMPTY_ROWS else f"review {row}: great product, works well" + " really" * (row % 6),
            "date": f"2024-01-{row % 28 + 1:02d}",
        }
        for row in range(1, ROWS + 1)
    ]
    folder = tmp_path_factory.mktemp("ray-corpus")
    lines = [json.dumps({**row, "id": row["id"] if i % 3 else i}) + "\n" for i, row in enumerate(rows)]
    (folder / "reviews.jsonl").write_text("".join(lines), encoding="utf-8")
    return {"csv": write_csv(folder / "reviews.csv", rows), "jsonl": folder / "reviews.jsonl"}


def _predict(capsys: pytest.CaptureFixture[str], *options: str) -> str:
    """`nlp-transfer predict` with these options; its summary line (stderr) without the timing and file name."""
    assert main(["predict", "--quiet", *options]) == 0, capsys.readouterr().err
    summary = [line for line in capsys.readouterr().err.splitlines() if line.startswith(f"{ROWS} rows")]
    assert len(summary) == 1
    return re.sub(r" in [\d.]+ s \([\d,]+ texts/s\)", "", summary[0]).rsplit(". Wrote", 1)[0]


@pytest.mark.parametrize(("source", "suffix"), [("csv", ".jsonl"), ("csv", ".parquet"), ("jsonl", ".csv")])
def test_ray_writes_the_local_backends_bytes(
    local_ray: object,
    trained: Path,
    corpus: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    source: str,
    suffix: str,
) -> None:
    common = ["--model", str(trained), "--file", str(corpus[source]), "--keep-columns", "id", "--chunk-rows", "7"]
    local, on_ray = tmp_path / f"local{suffix}", tmp_path / f"ray{suffix}"
    local_summary = _predict(capsys, *common, "--output", str(local))
    ray_summary = _predict(capsys, *common, "--output", str(on_ray), "--backend", "ray", "--ray-workers", "2")
    assert on_ray.read_bytes() == local.read_bytes()
    assert ray_summary == local_summary
    assert "6 skipped (empty text: rows 5, 14, 23, 32, 41 and 1 more)" in ray_summary
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([local.name, on_ray.name])  # no partial left
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(on_ray)
        assert table.column_names == ["id", "text", "label", "score", "skipped"]
        assert table.column("id").to_pylist() == [f"{row:03d}" for row in range(1, ROWS + 1)]


def test_resume_is_refused_on_ray(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Refused before anything is read or loaded (neither the model nor the file exists)."""
    options = ["--model", str(tmp_path / "model"), "--file", str(tmp_path / "in.csv"), "--output", "o.jsonl"]
    assert main(["predict", *options, "--backend", "ray", "--resume"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--resume is the local backend's: run the same command without --backend ray" in err
    assert "Traceback" not in err


def test_ray_options_need_the_ray_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    options = ["--model", str(tmp_path / "model"), "--file", str(tmp_path / "in.csv"), "--ray-workers", "2"]
    assert main(["predict", *options]) == 2
    assert "--ray-workers goes with --backend ray" in " ".join(capsys.readouterr().err.split())


def test_without_ray_the_ray_backend_names_the_install(
    trained: Path, corpus: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    assert main(["predict", "--model", str(trained), "--file", str(corpus["csv"]), "--backend", "ray"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--backend ray needs Ray with Ray Data: pip install 'nlp-transfer[ray]'" in err
    assert "Traceback" not in err


def test_the_local_backend_does_not_import_ray() -> None:
    code = (
        "import sys; import nlp_transfer.cli.predict, nlp_transfer.inference.corpus; "
        "assert 'ray' not in sys.modules, 'ray imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
