"""The package's wings import downward only, and its modules form no cycle (read from the source with `ast`).

The wings, top first (README.md's "How the code is laid out"; the team's design notes):

    cli -> experiments -> training -> inference -> hub -> modeling | data -> config -> evaluation -> shared leaves

An import between two wings must point to a lower level; wings on one level (modeling, data) do not import each
other. Inside a wing, modules import each other freely but without cycles. Imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nlp_transfer"

LEVELS: list[set[str]] = [
    {"nlp_transfer", "cli"},  # the public API (`nlp_transfer/__init__.py`) and the commands
    {"experiments", "labels", "distill"},  # peers: many runs; where labels are spent; students of a teacher
    {"training"},
    {"inference"},
    {"hub"},
    {"modeling", "data"},
    {"config"},  # the options every wing below training reads; it reads the metric names (evaluation)
    {"evaluation"},
    # The shared leaves: top-level modules every wing may import (and each other, without cycles).
    {"errors", "tasks", "outputs", "settings", "version", "folder_lock", "tables"},
]
LEAVES = LEVELS[-1]
WINGS = set().union(*LEVELS[1:-1], {"cli"})


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


def wing_of(module: str) -> str:
    """The wing (or shared leaf) a module belongs to: nlp_transfer.modeling.strategies.lora -> modeling."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def level_of(wing: str) -> int:
    for depth, level in enumerate(LEVELS):
        if wing in level:
            return depth
    raise AssertionError(f"{wing} is in no level: add it to LEVELS in {Path(__file__).name}")


def arrow_runs_back(importer: str, imported: str) -> bool:
    """An import between two wings that does not point to a lower level (leaves may import each other)."""
    source, target = wing_of(importer), wing_of(imported)
    if source == target or (source in LEAVES and target in LEAVES):
        return False
    return level_of(target) <= level_of(source)


def test_every_module_is_in_a_wing_or_a_shared_leaf() -> None:
    for module in MODULES:
        level_of(wing_of(module))
    top_level_files = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}
    assert top_level_files == LEAVES, "a new top-level module is a shared leaf (add it to LEVELS) or goes in a wing"


@pytest.mark.parametrize("wing", sorted(WINGS))
def test_each_wing_says_what_it_owns_and_imports_nothing_on_import(wing: str) -> None:
    """A wing's `__init__.py` is its docstring: what it owns and which wings it may import; importing a wing's
    package loads none of its modules (so `nlp_transfer.cli` stays fast to import)."""
    tree = ast.parse((PACKAGE / wing / "__init__.py").read_text(encoding="utf-8"))
    docstring = ast.get_docstring(tree)
    assert docstring and len(docstring.splitlines()) >= 2, f"{wing}/__init__.py: say what the wing owns"
    assert "import" in docstring, f"{wing}/__init__.py: say what the wing may import"
    assert len(tree.body) == 1, f"{wing}/__init__.py holds only its docstring"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_downward_between_wings(module: str) -> None:
    upward = [imported for imported in sorted(GRAPH[module]) if arrow_runs_back(module, imported)]
    assert not upward, f"{module} imports {upward}, which sit on its wing's level or above it"


MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def test_modules_and_functions_stay_small() -> None:
    """A module a reader can hold (at most 500 lines) and functions of at most 60 lines, docstring included."""
    long_modules = {}
    long_functions = []
    for name, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_MODULE_LINES:
            long_modules[name] = len(text.splitlines())
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{name}.{node.name} ({length} lines)")
    assert not long_modules, f"split these modules by concern: {long_modules}"
    assert not long_functions, f"shorten these functions: {long_functions}"


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


def test_the_checker_sees_an_arrow_that_runs_back() -> None:
    """The tests above can fail: evaluation importing training, data importing modeling (peers), or config
    importing data would each be caught; the graph is read from real imports."""
    assert arrow_runs_back("nlp_transfer.evaluation.calibration", "nlp_transfer.training.fine_tune")
    assert arrow_runs_back("nlp_transfer.data.prepare", "nlp_transfer.modeling.heads")
    assert arrow_runs_back("nlp_transfer.config.data", "nlp_transfer.data.long_text")
    assert arrow_runs_back("nlp_transfer.outputs", "nlp_transfer.evaluation.record")
    assert not arrow_runs_back("nlp_transfer.training.fine_tune", "nlp_transfer.evaluation.calibration")
    assert not arrow_runs_back("nlp_transfer.settings", "nlp_transfer.version")
    assert "nlp_transfer.outputs" in GRAPH["nlp_transfer.evaluation.record"]
    assert "nlp_transfer.modeling.strategies.lora" in GRAPH["nlp_transfer.modeling.strategies.hybrid"]
