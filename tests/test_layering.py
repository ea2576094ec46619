"""The package's imports point downward and form no cycle (read from the source with `ast`, nothing imported).

The layers, top first (README.md's "Development" section; the team's design notes): the public API and the
CLI; the run (`training`); what a run and a saved folder use (strategies, trainer, evaluation, prediction,
saving, card and push); data, checkpoints and optimisation; and the leaves (options, metrics, architectures,
the record and the folder's formats).
A module may import one of its own layer or below, never above; imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nlp_transfer"

LAYERS: list[set[str]] = [
    {"nlp_transfer", "cli"},
    {"experiments", "benchmark"},
    {"training", "adapt"},
    {
        "strategies",
        "trainer",
        "evaluation",
        "verification",
        "predict",
        "onnx_runtime",
        "export",
        "recalibration",
        "saving",
        "push",
        "hub",
        "callbacks",
        "heads",
        "head_init",
        "resume",
    },
    {"data", "data_checks", "checkpoints", "optim", "class_weights", "recipes"},
    {
        # long_text: pure functions over token ids and logit arrays (it imports only tasks and errors), so the
        # options check its modes and the metrics aggregate chunks with it.
        "long_text",
        # calibration and conformal: statistics over logits and scores (and the temperature's folding into an
        # output layer), read by evaluation, prediction and training alike.
        "calibration",
        "conformal",
        "config",
        "metrics",
        "layers",
        "record",
        "settings",
        "outputs",
        "folder_lock",
        "parser_cache",
        "public",
        "tables",
        "savings",
        "grid_plots",
        "flops",
        "tasks",
        "errors",
        "version",
    },
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path) -> set[str]:
    """The package's modules `path` imports; `from pkg import sub` counts as importing the module pkg.sub."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "nlp_transfer")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "nlp_transfer":
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & set(MODULES)
            found.update(submodules or {node.module})
    return found - {module_name(path)}


GRAPH = {name: imported_modules(path) for name, path in MODULES.items()}


def layer_of(module: str) -> int:
    """The layer of a module: that of its top-level name (nlp_transfer.strategies.lora -> strategies)."""
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else parts[0]
    for depth, layer in enumerate(LAYERS):
        if key in layer:
            return depth
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in {Path(__file__).name}")


def within_package(importer: str, imported: str) -> bool:
    """An import between modules of one subpackage (strategies.hybrid -> strategies.lora) stays in its layer."""
    return importer.split(".")[:2] == imported.split(".")[:2]


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_downward(module: str) -> None:
    upward = [
        imported
        for imported in sorted(GRAPH[module])
        if not within_package(module, imported) and layer_of(imported) < layer_of(module)
    ]
    assert not upward, f"{module} imports {upward}, which sit above it"


def test_no_submodule_imports_the_package_root() -> None:
    offenders = [
        module for module, imported in GRAPH.items() if module != "nlp_transfer" and "nlp_transfer" in imported
    ]
    assert not offenders, f"{offenders} import the package root (take __version__ from nlp_transfer.version)"


def test_no_import_cycle() -> None:
    """Depth-first search over module imports."""
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(GRAPH.get(module, ())):
            if state.get(imported) == "open":
                raise AssertionError(f"import cycle: {' -> '.join([*path, module, imported])}")
            if imported not in state:
                visit(imported, [*path, module])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [])


def test_the_checker_sees_an_upward_import() -> None:
    """The test above can fail: config importing training would be caught."""
    assert layer_of("nlp_transfer.training") < layer_of("nlp_transfer.config")
    assert "nlp_transfer.outputs" in GRAPH["nlp_transfer.record"]
