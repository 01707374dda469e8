"""Opens the ``datarax-ops verify`` HTML report in headless Chromium and checks it renders.

``python -m tests.browser.check_report REPORT.html --screenshot out.png``

Checks, each failure listed:

* the page loads (``document.readyState == "complete"``) and has at least one image;
* every ``<img>`` has loaded: ``complete`` and ``naturalWidth > 0`` (a broken
  ``data:`` URI or a missing file fails here);
* the browser console has no ``SEVERE`` entries (script errors, failed loads);
* every mode of ``datarax_ops.modes.MODES`` has a section: an element whose
  ``id`` contains the mode's name, or a heading (``h1``-``h4``) whose text does;
* the summary grid (``<table id="grid">``) is shown above the full verdict table,
  has a row per mode (and any per training setting), and each cell reads
  ``<mark> passed/total`` (class ``pass`` exactly when all passed, with a link) or
  ``—``; a row's property counts add up to its ``all`` column;
* every id is a valid HTML id (letters, digits, ``-``, ``_``; a letter first) and
  unique, and every in-page link (``href="#..."``) resolves to an element.

Then a full-page screenshot is saved (the window is resized to the page's full
height) and its path printed.  Exit status 0 when every check passed, 1 if not.

Needs ``selenium`` and Debian's ``chromium`` and ``chromium-driver`` packages
(``nox -s browser`` runs it).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PAGE_WIDTH = 1280
MAX_PAGE_HEIGHT = 30000
LOAD_TIMEOUT_S = 30.0

# One JS expression per fact the checks need; kept here so the checks stay readable.
_JS_READY = "return document.readyState;"
_JS_IMAGES = """
return Array.from(document.images).map((img, i) => ({
  index: i,
  src: (img.getAttribute('src') || '').slice(0, 80),
  alt: img.getAttribute('alt') || '',
  complete: img.complete,
  naturalWidth: img.naturalWidth,
}));
"""
_JS_SECTION_TEXTS = """
const ids = Array.from(document.querySelectorAll('[id]')).map(e => e.id.toLowerCase());
const heads = Array.from(document.querySelectorAll('h1,h2,h3,h4'))
  .map(e => e.textContent.toLowerCase());
return {ids: ids, headings: heads};
"""
_JS_ANCHORS = """
const ids = Array.from(document.querySelectorAll('[id]')).map(e => e.id);
const links = Array.from(document.querySelectorAll('a[href^="#"]'))
  .map(a => a.getAttribute('href').slice(1));
const missing = links.filter(h => document.getElementById(decodeURIComponent(h)) === null);
return {ids: ids, links: links.length, missing: missing};
"""
_JS_GRID = """
const grid = document.getElementById('grid');
if (grid === null) { return null; }
const full = document.getElementById('verdicts');
const link = c => { const a = c.querySelector('a'); return a ? a.getAttribute('href') : null; };
const cell = c => ({text: c.textContent.trim(), cls: c.className, href: link(c)});
return {
  columns: Array.from(grid.tHead.rows[0].cells).map(c => c.textContent.trim()),
  rows: Array.from(grid.tBodies[0].rows).map(r => Array.from(r.cells).map(cell)),
  height: grid.getBoundingClientRect().height,
  above: full === null || grid.getBoundingClientRect().top
    < full.closest('details, table').getBoundingClientRect().top,
};
"""
_JS_PAGE_HEIGHT = (
    "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight);"
)


def find_binaries() -> tuple[str, str]:
    """``(chromium, chromedriver)`` paths.

    Raises:
      RuntimeError: either is missing, naming the Debian packages to install.
    """
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        missing = [n for n, p in (("chromium", chromium), ("chromedriver", driver)) if p is None]
        raise RuntimeError(
            f"{' and '.join(missing)} not on PATH: install Debian's packages "
            "`sudo apt-get install chromium chromium-driver`"
        )
    return chromium, driver


def make_driver(width: int = PAGE_WIDTH, height: int = 1000) -> Any:
    """A headless Chromium ``selenium.webdriver.Chrome`` that records the browser console."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = find_binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def wait_until_loaded(driver: Any, timeout_s: float = LOAD_TIMEOUT_S) -> bool:
    """Waits for ``readyState == "complete"`` and every image ``complete``; True if both
    happened within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if driver.execute_script(_JS_READY) == "complete" and all(
            img["complete"] for img in driver.execute_script(_JS_IMAGES)
        ):
            return True
        time.sleep(0.1)
    return False


def image_problems(images: Sequence[dict[str, Any]]) -> list[str]:
    """Problems with the page's images (``_JS_IMAGES`` records): none at all, or any
    not complete or with ``naturalWidth == 0``."""
    if not images:
        return ["the page has no <img> elements"]
    return [
        f"image #{img['index']} (alt {img['alt']!r}, src {img['src']!r}...) did not load "
        f"(complete={img['complete']}, naturalWidth={img['naturalWidth']})"
        for img in images
        if not img["complete"] or not img["naturalWidth"]
    ]


def console_problems(log: Sequence[dict[str, Any]]) -> list[str]:
    """The ``SEVERE`` entries of a browser log (``driver.get_log("browser")``)."""
    return [
        f"console error: {entry.get('message', '')}"
        for entry in log
        if entry.get("level") == "SEVERE"
    ]


def section_problems(found: dict[str, list[str]], modes: Sequence[str]) -> list[str]:
    """Modes without a section: neither an element id nor a heading mentions the name
    (``found``: ``{"ids": [...], "headings": [...]}``, lower case)."""
    problems = []
    for mode in modes:
        name = mode.lower()
        variants = {name, name.replace("_", "-"), name.replace("_", " "), name.replace("_", " & ")}
        hit = any(v in text for v in variants for text in (*found["ids"], *found["headings"]))
        if not hit:
            problems.append(f"no section for mode {mode!r} (no element id or heading names it)")
    return problems


VALID_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
GRID_CELL = re.compile(r"^([\u2713\u2717]) (\d+)/(\d+)$")
NO_CHECK = "\u2014"


def anchor_problems(found: dict[str, Any]) -> list[str]:
    """Invalid or repeated ids, and in-page links to no element (``_JS_ANCHORS``)."""
    ids = found["ids"]
    problems = [f"invalid id {i!r}" for i in ids if not VALID_ID.match(i)]
    problems += [
        f"id {i!r} used {ids.count(i)} times" for i in sorted(set(ids)) if ids.count(i) > 1
    ]
    problems += [f"link #{href} resolves to no element" for href in found["missing"]]
    if not found["links"]:
        problems.append("the page has no in-page links")
    return problems


def _cell_problems(row: str, column: str, cell: dict[str, Any]) -> tuple[list[str], int, int]:
    """Problems with one grid cell, and its (passed, total) (0, 0 for no check)."""
    if cell["text"] == NO_CHECK:
        return [], 0, 0
    match = GRID_CELL.match(cell["text"])
    if not match:
        return [f"grid {row} / {column}: {cell['text']!r} is neither a count nor {NO_CHECK}"], 0, 0
    mark, passed, total = match.group(1), int(match.group(2)), int(match.group(3))
    problems = []
    all_passed = passed == total
    if not 0 < total or passed > total or (mark == "\u2713") != all_passed:
        problems.append(f"grid {row} / {column}: {cell['text']!r} does not add up")
    if ("pass" if all_passed else "FAIL") not in cell["cls"].split():
        problems.append(f"grid {row} / {column}: class {cell['cls']!r} for {cell['text']!r}")
    if not (cell["href"] or "").startswith("#"):
        problems.append(f"grid {row} / {column}: no link to its rows")
    return problems, passed, total


def grid_problems(grid: dict[str, Any] | None, modes: Sequence[str]) -> list[str]:
    """Problems with the summary grid (``_JS_GRID``): missing, hidden, below the full table,
    a mode without its row, a cell that is not ``mark passed/total`` or ``\u2014``, or a
    row whose property counts do not add up to its ``all`` column."""
    if grid is None:
        return ['no summary grid (<table id="grid">)']
    problems = [] if grid["height"] > 0 else ["the summary grid is not shown"]
    if not grid["above"]:
        problems.append("the summary grid is not above the full verdict table")
    columns = grid["columns"]
    if len(columns) < 3 or columns[-1] != "all":
        problems.append(f"grid columns {columns}: expected a name, properties, and 'all'")
        return problems
    names = [row[0]["text"] for row in grid["rows"]]
    problems += [f"no grid row for mode {m!r}" for m in modes if m not in names]
    for row in grid["rows"]:
        name = row[0]["text"]
        if len(row) != len(columns):
            problems.append(f"grid row {name!r} has {len(row)} cells for {len(columns)} columns")
            continue
        if not (row[0]["href"] or "").startswith("#"):
            problems.append(f"grid row {name!r} does not link to its section")
        sums = [0, 0]
        for column, cell in zip(columns[1:-1], row[1:-1], strict=True):
            found, passed, total = _cell_problems(name, column, cell)
            problems += found
            sums = [sums[0] + passed, sums[1] + total]
        found, passed, total = _cell_problems(name, "all", row[-1])
        problems += found
        if [passed, total] != sums:
            problems.append(
                f"grid row {name!r}: properties add up to {sums}, all says {passed, total}"
            )
    return problems


def mode_names() -> list[str]:
    """The names of ``datarax_ops.modes.MODES``."""
    from datarax_ops.modes import MODES

    return [mode.name for mode in MODES]


def full_page_screenshot(driver: Any, path: Path, width: int = PAGE_WIDTH) -> Path:
    """Resizes the window to the page's full height (at most ``MAX_PAGE_HEIGHT``) and
    saves a PNG of it to ``path``."""
    height = min(int(driver.execute_script(_JS_PAGE_HEIGHT)), MAX_PAGE_HEIGHT)
    driver.set_window_size(width, max(height, 200))
    time.sleep(0.3)  # let layout settle after the resize
    path.parent.mkdir(parents=True, exist_ok=True)
    if not driver.save_screenshot(str(path)):
        raise RuntimeError(f"Chromium could not write the screenshot {path}")
    return path


def check_report(
    report: Path,
    screenshot: Path | None,
    modes: Sequence[str] | None = None,
    width: int = PAGE_WIDTH,
) -> list[str]:
    """Opens ``report`` in headless Chromium (a window ``width`` CSS pixels wide), runs
    every check, saves ``screenshot`` (if given) and returns the problems found (empty:
    the report renders)."""
    modes = mode_names() if modes is None else modes
    driver = make_driver(width=width)
    try:
        driver.get(report.resolve().as_uri())
        problems = [] if wait_until_loaded(driver) else ["page or images still loading after 30 s"]
        problems += image_problems(driver.execute_script(_JS_IMAGES))
        problems += section_problems(driver.execute_script(_JS_SECTION_TEXTS), modes)
        problems += grid_problems(driver.execute_script(_JS_GRID), modes)
        problems += anchor_problems(driver.execute_script(_JS_ANCHORS))
        problems += console_problems(driver.get_log("browser"))
        if screenshot is not None:
            full_page_screenshot(driver, screenshot, width)
    finally:
        driver.quit()
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.browser.check_report",
        description="Check that a datarax-ops verify HTML report renders in headless Chromium.",
    )
    parser.add_argument("report", type=Path, help="the report's HTML file")
    parser.add_argument(
        "--screenshot",
        type=Path,
        default=None,
        help="where to save a full-page PNG (default: report-screenshot.png next to the report)",
    )
    parser.add_argument(
        "--modes",
        nargs="*",
        default=None,
        help="mode names whose sections must be present (default: every mode of MODES)",
    )
    parser.add_argument(
        "--width",
        type=int,
        default=PAGE_WIDTH,
        help=f"browser window width in pixels (default {PAGE_WIDTH})",
    )
    args = parser.parse_args(argv)
    if not args.report.is_file():
        print(f"report not found: {args.report}", file=sys.stderr)
        return 2
    screenshot = args.screenshot or args.report.with_name("report-screenshot.png")
    problems = check_report(args.report, screenshot, args.modes, args.width)
    print(f"screenshot: {os.path.abspath(screenshot)}")
    if problems:
        print(f"{args.report}: {len(problems)} problem(s):", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print(
        f"{args.report}: renders (images loaded, no console errors, every mode section and "
        "grid row present, grid counts add up, every id valid and every link resolves)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
