"""Sphinx configuration of the qcs-jupyter documentation (MyST Markdown, pydata-sphinx-theme).

Build with ``bash scripts/docs.sh``: warnings are errors, every cross-reference must resolve (nitpicky), and
every internal link and anchor of the built pages is checked (``_ext/qcs_docs.py``). Generated from the code:
the configuration reference (autodoc-traits), the metrics table, the problem-code table and the CLI's help.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import qcs_jupyter  # noqa: E402

project = "qcs-jupyter"
author = "qcs-jupyter developers"
copyright = "qcs-jupyter developers"
release = qcs_jupyter.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "autodoc_traits",
    "sphinxcontrib.mermaid",
    "sphinx_copybutton",
    "qcs_docs",
]
root_doc = "index"
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "_ext", "Thumbs.db", ".DS_Store"]
# Every reference must resolve: a renamed page, label or Python object fails the build.
nitpicky = True

# -- MyST ----------------------------------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist", "fieldlist", "attrs_inline"]
# Headings up to ### get anchors, so [text](page.md#a-heading) links are checked too.
myst_heading_anchors = 3

# -- autodoc / autodoc-traits (the configuration reference) --------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "none"
# autodoc-traits warns (a Python FutureWarning, not a Sphinx warning) about the help-less options every
# jupyter-server extension inherits; those are left out of the reference anyway (qcs_docs.skip_inherited).
warnings.filterwarnings("ignore", category=FutureWarning, module="autodoc_traits")

# -- HTML ------------------------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = "qcs-jupyter"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {
    "navbar_align": "left",
    "header_links_before_dropdown": 7,
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False
# Pages without sub-pages need no left sidebar.
html_sidebars = {
    page: [] for page in ("index", "quickstart", "how-it-works", "use", "security", "changelog", "contributing")
}
html_context = {"default_mode": "auto"}

# -- Mermaid ---------------------------------------------------------------------------------------------------
# Rendered in the reader's browser; without JavaScript the diagram's source stays readable.
mermaid_output_format = "raw"
