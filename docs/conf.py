"""Sphinx configuration: markdown pages (MyST, maths through MathJax), a gallery of worked
examples that run at build time (sphinx-gallery), an API reference from the docstrings, in
the PyData theme."""
import pathlib
import sys

import pgm_energy

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # gallery_helpers

project = "pgm_energy"
author = "pgm_energy developers"
copyright = "pgm_energy developers"
release = version = pgm_energy.__version__
extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "generated/*.md", "examples", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip"]
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_validation_checks = set()

myst_enable_extensions = ["amsmath", "deflist", "dollarmath"]
myst_heading_anchors = 2

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    # pe.plotting builds figures without pyplot: the scraper picks them up from the
    # example's namespace (and still takes pyplot figures).
    "image_scrapers": ("gallery_helpers.scrape_figures",),
    "within_subsection_order": "gallery_helpers.ExampleOrder",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "plot_gallery": True,
    "abort_on_example_error": True,
}

html_theme = "pydata_sphinx_theme"
html_title = f"pgm_energy {release}"
html_theme_options = {
    "navbar_align": "left",
    "header_links_before_dropdown": 6,
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_sidebars = {"index": []}
html_show_sourcelink = False
