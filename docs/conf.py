"""Sphinx configuration: markdown pages (MyST) and an API reference from the docstrings."""
import pgm_energy

project = "pgm_energy"
author = "pgm_energy developers"
release = version = pgm_energy.__version__
extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "generated/*.md"]
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_validation_checks = set()
myst_heading_anchors = 2
html_theme = "alabaster"
