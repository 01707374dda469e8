"""A mode is one unit (issue 23): declared once per layer, asked, never named.

Each mode is its reference file (``reference/modes/<name>.py``, the law, fields,
strengths and capabilities), its compiled file (``datarax_ops/modes/<name>.py``)
and its law (``datarax_ops/conformance/laws/<name>.py``), plus one line of the
registry; every other module derives its lists from the registry and asks the
mode's declaration.  Read from the source with ``ast``, so a module that starts
naming a mode fails here.
"""

from __future__ import annotations

import ast
import dataclasses
import pathlib
import typing

import jax.numpy as jnp
import numpy as np
import pytest
from datarax_ops.reference import modes as registry
from datarax_ops.reference.config import CONFIG_CLASSES
from datarax_ops.reference.spec import ModeSpec, Strength

from datarax_ops import modes as compiled

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The source folders that hold the package (examples/ are user code and name modes).
SOURCES = ("reference", "datarax_ops", "scripts")
# Functions no longer than this (a function that is longer does more than one thing).
LONGEST_FUNCTION = 80


def _python_files() -> list[pathlib.Path]:
    return sorted(p for folder in SOURCES for p in (ROOT / folder).rglob("*.py"))


def _string_literals(path: pathlib.Path) -> set[str]:
    return {
        node.value
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def _allowed_homes(name: str) -> set[pathlib.Path]:
    """Where mode ``name`` may be spelled: its three files and the config's ``Literal``."""
    return {
        ROOT / "reference" / "modes" / f"{name}.py",
        ROOT / "reference" / "config.py",
        ROOT / "datarax_ops" / "modes" / f"{name}.py",
        ROOT / "datarax_ops" / "conformance" / "laws" / f"{name}.py",
    }


@pytest.mark.parametrize("name", registry.names())
def test_a_mode_name_is_a_literal_only_in_its_own_files(name):
    homes = {p for p in _python_files() if name in _string_literals(p)}
    strangers = sorted(str(p.relative_to(ROOT)) for p in homes - _allowed_homes(name))
    assert not strangers, f"mode {name!r} is named in {strangers}: ask its declaration instead"
    assert len(homes) <= 4


def _imports_of(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_generic_module_imports_a_modes_own_file():
    """Only the mode files themselves (and the package's public facade, which re-exports
    the kernel classes by name) import a compiled mode file or its kernel class."""
    mode_files = {f"datarax_ops.modes.{name}" for name in registry.names()}
    mode_files |= {"datarax_ops.modes._dropout"}
    kernels = {mode.kernel_class.__name__ for mode in compiled.MODES}
    offenders = []
    for path in _python_files():
        relative = path.relative_to(ROOT)
        if relative.parts[:2] == ("datarax_ops", "modes") or relative == pathlib.Path(
            "datarax_ops/__init__.py"
        ):
            continue
        imported = _imports_of(path)
        hits = {m for m in imported if m in mode_files or m.rsplit(".", 1)[-1] in kernels}
        if hits:
            offenders.append(f"{relative}: {sorted(hits)}")
    assert not offenders, "\n".join(offenders)


def test_no_function_is_longer_than_80_lines():
    long = []
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > LONGEST_FUNCTION:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {lines}")
    assert not long, "\n".join(long)


@pytest.mark.parametrize("family", sorted(CONFIG_CLASSES))
def test_the_configs_mode_type_lists_exactly_the_registered_modes(family):
    hints = typing.get_type_hints(CONFIG_CLASSES[family])
    assert typing.get_args(hints["mode"]) == registry.names(family)


@pytest.mark.parametrize("mode", compiled.MODES, ids=lambda m: m.name)
def test_every_mode_has_its_three_files_and_they_agree(mode):
    law_file = ROOT / "datarax_ops" / "conformance" / "laws" / f"{mode.name}.py"
    assert law_file.is_file()
    assert mode.kernel_class.spec is mode.spec
    assert mode.config_class is CONFIG_CLASSES[mode.spec.family]
    own = [f.name for f in dataclasses.fields(mode.kernel_class) if f.kw_only is False]
    assert tuple(own) == mode.spec.fields, "the kernel holds exactly the declared fields"


@pytest.mark.parametrize("mode", compiled.MODES, ids=lambda m: m.name)
def test_a_kernel_copies_its_fields_by_name(mode):
    config = mode.config_class(field_key="image", mode=mode.name, clip_range=(0.25, 0.75))
    kernel = mode.kernel_class.from_config(config)
    for name in mode.spec.fields:
        value = getattr(config, name)
        held = getattr(kernel, name)
        assert held == (tuple(value) if isinstance(value, tuple) else value), name


def test_a_strengths_slot_is_its_declaration_not_its_position():
    """Reversing the order of a kernel's ranges draws the same strengths: each comes from
    the record slot its declaration names."""
    mode = next(m for m in compiled.MODES if len(m.spec.strengths) > 1)
    ranges = {s.range_field: s.example_range for s in mode.spec.strengths}
    config = mode.config_class(field_key="image", mode=mode.name, stochastic=True, **ranges)
    kernel = mode.kernel_class.from_config(config)
    reversed_kernel = dataclasses.replace(kernel, ranges=tuple(reversed(kernel.ranges)))
    key = jnp.asarray([7, 11], jnp.uint32)
    drawn = kernel.drawn_strengths(key)
    assert set(drawn) == {s.scalar for s in mode.spec.strengths}
    for name, value in reversed_kernel.drawn_strengths(key).items():
        np.testing.assert_array_equal(np.asarray(value), np.asarray(drawn[name]))
    assert len({float(v) for v in drawn.values()}) == len(drawn), "distinct slots, distinct draws"


def test_a_declaration_rejects_a_shared_slot_and_an_unknown_slot():
    base = registry.MODES[0]
    strength = Strength("a", "a_range", law="uniform", slot=1, domain="probability",
                        example_range=(0.0, 1.0))  # fmt: skip
    with pytest.raises(ValueError, match="share a record slot"):
        dataclasses.replace(base, strengths=(strength, dataclasses.replace(strength, scalar="b")))
    with pytest.raises(ValueError, match="slot 9"):
        dataclasses.replace(strength, slot=9)


def test_every_registered_mode_is_a_complete_declaration():
    for spec in registry.MODES:
        assert isinstance(spec, ModeSpec)
        assert spec.family in CONFIG_CLASSES
        assert spec.datarax_missing_params, f"{spec.name}: datarax's message when params lack"
        assert spec.example() is not None and spec.default_label.startswith(spec.name)
        assert registry.by_name(spec.name) is spec
    with pytest.raises(KeyError, match="the modes are"):
        registry.by_name("no-such-mode")
