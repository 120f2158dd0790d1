"""Sphinx configuration of hubauth's documentation (MyST Markdown pages, furo theme).

Build: ``.venv/bin/python -m sphinx -W --keep-going -b html docs docs/_build/html``
(``./dev test`` runs exactly that). No extension is fetched from the network.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Document the checkout, installed or not; the local extensions live in docs/_ext.
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE / "_ext"))

import hubauth  # noqa: E402

project = "hubauth"
author = "The hubauth developers"
copyright = "The hubauth developers"
release = hubauth.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "hubauth_settings",
    "hubauth_autodoc",
    "hubauth_diagrams",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]

# MyST: ::: fences, definition lists, and anchors for headings so that links of the form
# [text](page.md#heading) are checked (a missing heading is a warning, hence an error).
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# Broken references fail the build: every cross-reference is checked (nitpicky), except
# annotations naming classes outside hubauth (typing, tornado, flask, ...), which have no
# inventory here because nothing is downloaded.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(?!hubauth\b).*"),
    # Private names in annotations (e.g. hubauth._view.Decision) and type variables
    # (hubauth.flask.F) have no page of their own.
    (r"py:.*", r"hubauth(\.\w+)*\._\w+(\..*)?"),
    (r"py:.*", r"hubauth(\.\w+)*\.[A-Z]"),
]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_default_options = {"show-inheritance": True}

html_theme = "furo"
html_title = f"hubauth {release}"
html_static_path = ["_static"]
html_css_files = ["hubauth.css"]
