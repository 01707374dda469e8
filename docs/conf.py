"""Sphinx configuration: MyST Markdown pages, an API reference from the docstrings.

Built by ``nox -s docs`` (``sphinx-build -W --keep-going``: every warning fails the
build).  ``datarax_ops`` is imported from the editable install, never from the source
folder: only the install maps ``datarax_ops.reference`` onto ``reference/``.
"""

from __future__ import annotations

import datarax_ops

project = "datarax_ops"
author = "datarax_ops contributors"
release = version = datarax_ops.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",  # the "Args:" / "Returns:" sections of the docstrings
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# MyST: anchors for headings down to level 3, so pages link to each other's sections
# (`speed.md#records-of-any-size`).
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# The API reference: one generated page per public name (docs/_autosummary, git-ignored).
# A class's page (_templates/autosummary/class.rst) holds the members it inherits from
# datarax_ops' own bases (the operators' state and statistics methods), not flax's
# nnx.Module / Pytree ones, which flax documents.
autosummary_generate = True
templates_path = ["_templates"]
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# A class's "Attributes:" become fields of the class, not attribute entries of their own:
# a property described there (``Batch.valid_mask``) is documented once, as its member.
napoleon_use_ivar = True

html_theme = "sphinx_book_theme"
html_title = "datarax_ops"
html_theme_options = {"show_toc_level": 2}
