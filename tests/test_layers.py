"""The package's import layers: no cycle, no import upward, no import hidden in a function.

Layers, each importing only those at or below it (docs/design.md):

0. ``reference`` (NumPy only), ``errors``, ``config``, ``_common``, ``stream``, ``host_words``,
   ``compile_cache``;
1. ``poisson``, ``kernel``, ``buckets``;
2. (reserved)
3. ``modes``: each mode's compiled file (``modes/<name>.py``) and the list derived
   from the one registry (``reference/modes``);
4. the operator's helpers: ``batch``, ``fields``, ``records``, ``params``, ``bookkeeping``,
   ``state``;
5. ``operator``;
6. adapters: ``grain_transform``, ``checkpoint``;
7. ``conformance``, ``targets`` (the operators ``datarax-ops verify --target`` checks:
   ours, datarax's, albumentations'; at conformance's level, as an adapter may ask a
   mode's law for its counterpart), ``bench``, the CLI.

Read from the source with ``ast``: a module that is not placed in a layer fails the test,
so a new module gets a place on purpose.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = "datarax_ops"

LAYERS: dict[str, int] = {
    "reference": 0,
    "errors": 0,
    "config": 0,
    "_common": 0,
    "stream": 0,
    "host_words": 0,
    "compile_cache": 0,
    "poisson": 1,
    "strengths": 1,
    "kernel": 1,
    "buckets": 1,
    "modes": 3,
    "batch": 4,
    "fields": 4,
    "records": 4,
    "params": 4,
    "bookkeeping": 4,
    "state": 4,
    "operator": 5,
    "grain_transform": 6,
    "checkpoint": 6,
    "environment": 7,
    "conformance": 7,
    "targets": 7,
    "bench": 7,
    "accelerator_run": 7,
    "cli": 7,
    "cli_input": 7,
    "__main__": 7,
    "__init__": 7,
}
# The command line imports its subcommands when they run, so `datarax-ops --help` starts
# without JAX; that laziness is its purpose, not a hidden cycle.
LAZY_ALLOWED = {"cli"}
# Adapters that need an optional extra (grain, orbax) may be imported where they are used,
# so the modules above them still import without that extra.
OPTIONAL_EXTRA_MODULES = {"grain_transform", "checkpoint"}


def _module_files() -> dict[str, pathlib.Path]:
    """``{"noise": path, "conformance.checks": path, "reference.stream": path, ...}``."""
    files = {}
    for folder, prefix in ((ROOT / PACKAGE, ""), (ROOT / "reference", "reference.")):
        for path in sorted(folder.rglob("*.py")):
            name = prefix + ".".join(path.relative_to(folder).with_suffix("").parts)
            files[name.removesuffix(".__init__") or "__init__"] = path
    return files


def _imported(node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
    """The package modules an import statement in a module of ``package`` names
    (``datarax_ops.x.y`` -> ``x.y``; relative imports resolved from ``package``)."""
    if isinstance(node, ast.ImportFrom) and node.level:  # relative: only inside reference/
        base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
        if node.module:
            return [f"{base}.{node.module}"]
        return [f"{base}.{alias.name}" for alias in node.names]  # from . import x
    names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
    found = []
    for name in names:
        if name and (name == PACKAGE or name.startswith(PACKAGE + ".")):
            rest = name.removeprefix(PACKAGE).lstrip(".")
            if isinstance(node, ast.ImportFrom) and not rest:  # from datarax_ops import x
                found += [alias.name for alias in node.names]
            else:
                found.append(rest or "__init__")
    return found


def _layer(module: str) -> int:
    top = module.split(".")[0]
    if top not in LAYERS:
        raise AssertionError(f"module {module!r} has no layer: add it to LAYERS in {__file__}")
    return LAYERS[top]


def _in_type_checking(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def _imports() -> list[tuple[str, str, bool, int]]:
    """``(importer, imported, at module level, line)`` for every package import."""
    rows = []
    for importer, path in _module_files().items():
        tree = ast.parse(path.read_text())
        parents = {
            child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)
        }
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if _in_type_checking(node, parents):
                continue
            top_level = parents.get(node) is tree
            package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
            rows += [(importer, m, top_level, node.lineno) for m in _imported(node, package)]
    return rows


def test_every_module_has_a_layer():
    for module in _module_files():
        _layer(module)


def test_no_module_imports_a_higher_layer():
    upward = [
        f"{importer} (layer {_layer(importer)}) imports {imported} (layer {_layer(imported)}), "
        f"line {line}"
        for importer, imported, _, line in _imports()
        if _layer(imported) > _layer(importer)
    ]
    assert not upward, "\n".join(upward)


def test_no_package_import_is_hidden_in_a_function():
    hidden = [
        f"{importer}:{line} imports {imported} inside a function"
        for importer, imported, top_level, line in _imports()
        if not top_level
        and importer.split(".")[0] not in LAZY_ALLOWED
        and imported.split(".")[0] not in OPTIONAL_EXTRA_MODULES
    ]
    assert not hidden, "\n".join(hidden)


def test_the_import_graph_has_no_cycle():
    graph: dict[str, set[str]] = {}
    files = _module_files()
    for importer, imported, _, _ in _imports():
        if imported in files and imported != importer:
            graph.setdefault(importer, set()).add(imported)
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for child in sorted(graph.get(node, ())):
            if state.get(child) == 1:
                cycle = [*path[path.index(child) :], child] if child in path else [node, child]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if child not in state:
                visit(child, [*path, child])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
