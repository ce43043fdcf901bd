"""Sphinx configuration: the user guide, deployment, security, plugin guide and references.

Built in CI with warnings as errors (``sphinx-build -W``); the hook reference and the CLI
page are generated from the code (hookspecs' docstrings, the argparse parser).
"""

from __future__ import annotations

import sys
from importlib.metadata import version as _version
from pathlib import Path

# The checkout first, so autodoc documents this tree even beside another installed copy.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

project = "Sumatra Server"
author = "Sumatra Server developers"
release = _version("pyramid_sumatra")
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinxarg.ext",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_heading_anchors = 3
exclude_patterns = ["_build"]
nitpicky = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
html_theme = "furo"
html_title = f"Sumatra Server {release}"
