"""The README and the docs pages run as printed.

Every ```python block of a page runs, in the page's order, in one namespace per page (so
a block may use what an earlier block of its page defined).  Blocks that must not run
(shell commands, GPU-only code) use another fence language; a fence in a language not
listed in ``OTHER_FENCES`` fails the test, so a mistyped ``py`` fence cannot hide code
from it.  Tracebacks point at the page's own line numbers.
"""

from __future__ import annotations

import contextlib
import io
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]

# Fences that are shown, never run: shell, plain text, and MyST's directives.
OTHER_FENCES = {"bash", "console", "text", "toml", "{toctree}", "{eval-rst}"}
# Pages whose code needs an optional package, and the module that provides it.
NEEDS_MODULE = {"datarax.md": "datarax", "pipelines.md": "grain"}
# Pages whose code builds whole pipelines (seconds of compiling): `nox -s slow`.
SLOW = {"datarax.md", "pipelines.md"}
# What a page's code must print (its comments promise it).
PRINTS = {
    "README.md": ["(16, 32, 32, 3) float32"],
    "quickstart.md": ["loss after 3 steps:", "{'applied_count': 48, 'skipped_count': 0}"],
}

FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```[ \t]*$", flags=re.MULTILINE | re.DOTALL)


def fenced_blocks(path: pathlib.Path) -> list[tuple[str, int, str]]:
    """Every fenced block of a Markdown page: (language, line of its first code line, code)."""
    text = path.read_text()
    return [
        (m.group(1), text.count("\n", 0, m.start(2)) + 1, m.group(2)) for m in FENCE.finditer(text)
    ]


def python_program(path: pathlib.Path) -> str:
    """The page's ```python blocks as one program, each block at its own line of the page."""
    lines: list[str] = []
    for language, first_line, code in fenced_blocks(path):
        if language == "python":
            lines += [""] * (first_line - 1 - len(lines))
            lines += code.rstrip("\n").split("\n")
    return "\n".join(lines) + "\n"


def _param(path: pathlib.Path):
    marks = [pytest.mark.slow] if path.name in SLOW else []
    return pytest.param(path, id=path.name, marks=marks)


RUNNABLE = [p for p in PAGES if any(lang == "python" for lang, _, _ in fenced_blocks(p))]


def test_pages_found_with_their_code():
    names = {path.name for path in RUNNABLE}
    assert {"README.md", "quickstart.md", "training-settings.md", "datarax.md"} <= names
    assert set(NEEDS_MODULE) | set(SLOW) | set(PRINTS) <= names


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_fence_is_run_or_shown(page: pathlib.Path):
    unknown = [
        f"{page.name}:{line}: ```{lang}"
        for lang, line, _ in fenced_blocks(page)
        if lang != "python" and lang not in OTHER_FENCES
    ]
    assert not unknown, f"fences neither run (python) nor known to be shown: {unknown}"


@pytest.mark.parametrize("page", [_param(p) for p in RUNNABLE])
def test_page_code_runs(page: pathlib.Path):
    if page.name in NEEDS_MODULE:
        pytest.importorskip(NEEDS_MODULE[page.name])
    printed = io.StringIO()
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    with contextlib.redirect_stdout(printed):
        exec(compile(python_program(page), str(page), "exec"), namespace)
    for expected in PRINTS.get(page.name, []):
        assert expected in printed.getvalue(), (expected, printed.getvalue())


def test_api_page_lists_every_public_name():
    """The generated reference covers exactly ``datarax_ops.__all__``."""
    import datarax_ops

    api = (ROOT / "docs" / "api.md").read_text()
    (block,) = re.findall(r"\.\. currentmodule:: datarax_ops\n(.*?)```", api, flags=re.DOTALL)
    listed = re.findall(r"^   (\w+)$", block, flags=re.MULTILINE)
    assert sorted(listed) == sorted(datarax_ops.__all__)
    assert len(listed) == len(set(listed))


def test_readme_links_resolve():
    """The README's relative links point at files that exist (docs pages, pictures)."""
    targets = re.findall(r"\]\(((?!https?:)[^)#\s]+)(?:#[^)]*)?\)", README.read_text())
    assert any(t.startswith("docs/") and t.endswith(".md") for t in targets)
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert not missing, missing
