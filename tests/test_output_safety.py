"""Nothing the user owns is deleted, and one run at a time writes a folder: through the CLI, as a user types it.

Each refusal comes before any work (no model is loaded), with exit code 2, one paragraph, no traceback, and the
user's files byte for byte as they were.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import sentiment_rows, write_csv

from nlp_transfer.cli.app import main
from nlp_transfer.errors import UserInputError
from nlp_transfer.experiments.grid import load_grid
from nlp_transfer.experiments.runner import run_grid
from nlp_transfer.folder_lock import folder_lock, lock_path
from nlp_transfer.outputs import OWNER_FILE, check_output_dir, mark_owned, publish

DEMO = Path(__file__).resolve().parents[1] / "nlp_transfer" / "demo_data"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _error(err: str) -> str:
    """The one 'error: ...' paragraph on stderr, unwrapped."""
    assert "Traceback" not in err
    assert err.count("error: ") == 1, err
    return " ".join(err[err.index("error: ") :].split())


@pytest.fixture()
def user_folder(tmp_path: Path) -> Path:
    """A user's folder D with their data files and an unrelated note."""
    folder = tmp_path / "D"
    folder.mkdir()
    write_csv(folder / "train.csv", sentiment_rows())
    write_csv(folder / "validation.csv", sentiment_rows(4))
    (folder / "notes.txt").write_text("three weeks of annotation notes", encoding="utf-8")
    return folder


def test_output_dir_holding_the_runs_data_is_refused_and_kept_byte_for_byte(
    user_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _snapshot(user_folder)
    argv = ["train", "--train-file", str(user_folder / "train.csv"), "--validation-file"]
    argv += [str(user_folder / "validation.csv"), "--output-dir", str(user_folder), "--overwrite-output-dir"]
    assert main(argv) == 2
    message = _error(capsys.readouterr().err)
    assert (
        f"--output-dir {user_folder} holds {user_folder / 'train.csv'} (--train-file), an input of this run" in message
    )
    assert "would delete it" in message
    assert _snapshot(user_folder) == before
    assert sorted(p.name for p in user_folder.parent.iterdir()) == ["D"]  # no lock, no staging folder left


def test_overwrite_refuses_a_folder_the_package_did_not_write(
    user_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (user_folder / "train.csv").rename(tmp_path / "train.csv")
    before = _snapshot(user_folder)
    argv = ["train", "--train-file", str(tmp_path / "train.csv"), "--output-dir", str(user_folder)]
    assert main([*argv, "--overwrite-output-dir"]) == 2
    message = _error(capsys.readouterr().err)
    assert f"--output-dir {user_folder} was not written by nlp-transfer (it holds notes.txt, validation.csv)" in message
    assert "nothing was deleted" in message
    assert _snapshot(user_folder) == before


@pytest.mark.parametrize("option", ["--model", "--config"])
def test_output_dir_that_is_or_holds_the_model_or_the_config_is_refused(
    option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    previous = tmp_path / "runs" / "demo"
    previous.mkdir(parents=True)
    (previous / "config.json").write_text("{}", encoding="utf-8")
    mark_owned(previous, "train")
    config = previous / "options.yaml"
    config.write_text("num_train_epochs: 1\n", encoding="utf-8")
    value = str(previous) if option == "--model" else str(config)
    before = _snapshot(previous)
    argv = ["train", option, value, "--train-file", str(DEMO / "train.csv"), "--output-dir", str(previous)]
    assert main([*argv, "--overwrite-output-dir"]) == 2
    message = _error(capsys.readouterr().err)
    assert f"({option}), an input of this run" in message
    assert _snapshot(previous) == before


def test_files_added_to_an_owned_folder_are_named_and_kept(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "config.json").write_text("{}", encoding="utf-8")
    mark_owned(folder, "train")
    check_output_dir(str(folder), overwrite=True)  # the package's own folder: replaceable
    (folder / "sub").mkdir()
    (folder / "sub" / "mine.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(UserInputError, match=r"holds files nlp-transfer did not write: sub/mine\.txt\."):
        check_output_dir(str(folder), overwrite=True)


def _finished_run_beside_an_owned_target(tmp_path: Path) -> tuple[Path, Path]:
    """`out` (a folder the package wrote) and its staging folder, each with a config.json naming its folder."""
    target, staging = tmp_path / "out", tmp_path / ".out.incomplete"
    for folder in (target, staging):
        folder.mkdir()
        (folder / "config.json").write_text(folder.name, encoding="utf-8")
    mark_owned(target, "train")
    return target, staging


def test_publish_keeps_a_target_that_gained_foreign_files_during_the_run(tmp_path: Path) -> None:
    target, staging = _finished_run_beside_an_owned_target(tmp_path)
    (target / "added-while-training.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(UserInputError, match="added-while-training.txt"):
        publish(staging, target)
    assert (target / "added-while-training.txt").read_text(encoding="utf-8") == "mine"


def test_a_compare_grid_folder_is_not_a_train_folder_to_overwrite(tmp_path: Path) -> None:
    grid = tmp_path / "grid"
    grid.mkdir()
    mark_owned(grid, "compare", whole=False)
    with pytest.raises(UserInputError, match=r"is a folder of 'nlp-transfer compare'"):
        check_output_dir(str(grid), overwrite=True)


# ------------------------------------------------------------------------------------ one writer at a time


def test_a_second_run_into_a_folder_being_written_stops_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from pathlib import Path
                from nlp_transfer.folder_lock import folder_lock
                with folder_lock(Path({str(target)!r})):
                    print("locked", flush=True)
                    sys.stdin.readline()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        argv = ["train", "--train-file", str(DEMO / "train.csv"), "--output-dir", str(target)]
        assert main(argv) == 2
        message = _error(capsys.readouterr().err)
        assert f"Another run (pid {holder.pid}) is writing {target}" in message
    finally:
        holder.communicate("done\n", timeout=30)
    assert not lock_path(target).exists()  # the holder removed its lock
    assert not target.exists()


def test_a_lock_left_by_a_dead_run_is_taken_over(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    target = tmp_path / "out"
    lock_path(target).write_text(json.dumps({"pid": 2**22 + 1, "host": "gone"}), encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="nlp_transfer"), folder_lock(target):
        assert json.loads(lock_path(target).read_text(encoding="utf-8"))["pid"] != 2**22 + 1
    assert "left by a run that is gone (pid 4194305)" in caplog.text
    assert not lock_path(target).exists()


def test_the_lock_is_held_once_per_process_too(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with folder_lock(target), pytest.raises(UserInputError, match=r"Another run \(pid \d+\) is writing"):
        with folder_lock(target):
            pass


# ------------------------------------------------------------------------------ the other folder commands


def test_benchmark_refuses_a_file_and_a_folder_holding_its_data(
    user_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["benchmark", "--output-dir", str(user_folder / "notes.txt"), "--no-progress"]) == 2
    assert "exists and is not a folder" in _error(capsys.readouterr().err)
    before = _snapshot(user_folder)
    argv = ["benchmark", "--output-dir", str(user_folder), "--train-file", str(user_folder / "train.csv")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "(--train-file), an input of this run" in _error(err)
    assert "benchmark:" not in err  # no progress bar before the message
    assert _snapshot(user_folder) == before


def test_benchmark_refuses_a_foreign_non_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "bench"
    folder.mkdir()
    (folder / "benchmark.md").write_text("my own table", encoding="utf-8")
    assert main(["benchmark", "--output-dir", str(folder), "--no-progress"]) == 2
    assert "already holds files nlp-transfer did not write (benchmark.md)" in _error(capsys.readouterr().err)
    assert (folder / "benchmark.md").read_text(encoding="utf-8") == "my own table"


def _grid_file(folder: Path, output_dir: Path, train_file: Path) -> Path:
    path = folder / "grid.yaml"
    spec = {"train_file": str(train_file), "output_dir": str(output_dir), "strategies": ["full"], "seeds": [0]}
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def test_compare_refuses_data_under_the_cells_it_replaces(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    grid = tmp_path / "grid"
    train = write_csv(grid / "cells" / "train.csv", sentiment_rows())
    assert main(["compare", "--config", str(_grid_file(tmp_path, grid, train)), "--no-progress"]) == 2
    assert "an input of this run" in _error(capsys.readouterr().err)
    assert train.exists()


def test_compare_keeps_its_grid_file_beside_the_results_but_refuses_other_files(tmp_path: Path) -> None:
    grid = tmp_path / "grid"
    train = write_csv(tmp_path / "train.csv", sentiment_rows())
    config = _grid_file(grid.parent, grid, train)
    grid.mkdir()
    kept = config.rename(grid / "grid.yaml")
    trained: list[str] = []
    outcome = run_grid(load_grid(kept), train=lambda config: trained.append(config.training.output_dir), progress=False)
    assert len(trained) == 1 and outcome.failed  # the fake run wrote no record; what matters: the grid started
    assert json.loads((grid / OWNER_FILE).read_text(encoding="utf-8"))["command"] == "compare"

    other = tmp_path / "other"
    other.mkdir()
    (other / "summary.md").write_text("mine", encoding="utf-8")
    with pytest.raises(UserInputError, match=r"already holds files nlp-transfer did not write \(summary\.md\)"):
        run_grid(load_grid(_grid_file(tmp_path, other, train)), train=lambda config: None, progress=False)


def test_export_and_adapt_refuse_an_output_dir_holding_their_input(
    user_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("onnxruntime")
    before = _snapshot(user_folder)
    argv = ["export", "--model", str(user_folder), "--output-dir", str(user_folder), "--overwrite-output-dir"]
    assert main(argv) == 2
    assert f"--output-dir {user_folder} is {user_folder} (--model)" in _error(capsys.readouterr().err)
    notes = user_folder / "notes.txt"
    assert main(["adapt", "--text-file", str(notes), "--output-dir", str(user_folder), "--overwrite-output-dir"]) == 2
    assert "(--text-file), an input of this run" in _error(capsys.readouterr().err)
    assert _snapshot(user_folder) == before


def test_a_refusal_at_publish_keeps_the_finished_run_under_a_visible_name(tmp_path: Path) -> None:
    target, staging = _finished_run_beside_an_owned_target(tmp_path)
    (target / ".DS_Store").write_bytes(b"finder")  # a file manager's metadata is not the user's work...
    publish(staging, target)
    assert (target / "config.json").read_text(encoding="utf-8") == ".out.incomplete"
    staging.mkdir()
    (staging / "config.json").write_text("newer", encoding="utf-8")
    with pytest.raises(UserInputError, match=r"filled by another run while this one trained.*kept in .*out\.new-"):
        publish(staging, target, overwrite=False)  # ...but another run's output, without --overwrite-output-dir, is
    (kept,) = tmp_path.glob("out.new-*")
    assert (kept / "config.json").read_text(encoding="utf-8") == "newer"
    assert (target / "config.json").read_text(encoding="utf-8") == ".out.incomplete"


@pytest.mark.parametrize("given", [".", "..", "sub/.."])
def test_the_current_folder_or_one_above_it_is_refused(
    given: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "here" / "sub").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "here")
    with pytest.raises(UserInputError, match="is the current folder or one above it"):
        check_output_dir(given, overwrite=True)


def test_the_lock_never_writes_through_a_link(tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("my thesis", encoding="utf-8")
    lock_path(tmp_path / "out").symlink_to(precious)
    with pytest.raises(UserInputError, match="is not a lock file nlp-transfer wrote"), folder_lock(tmp_path / "out"):
        pass
    assert precious.read_text(encoding="utf-8") == "my thesis"


def test_a_folder_left_aside_by_a_killed_publish_is_put_back(tmp_path: Path) -> None:
    previous = tmp_path / ".out.previous"
    previous.mkdir()
    (previous / "config.json").write_text("the old run", encoding="utf-8")
    with pytest.raises(UserInputError, match="is not empty"):
        check_output_dir(str(tmp_path / "out"), overwrite=False)
    assert (tmp_path / "out" / "config.json").read_text(encoding="utf-8") == "the old run"
