"""The documentation: every ```python block of the docs pages (subfolders included) and the
README runs (in page order, one namespace per page), and Sphinx builds the pages, the API
reference and the gallery (whose scripts run) with warnings as errors."""
import pathlib
import re
import shutil

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GENERATED = ("_build", "auto_examples", "generated")  # build outputs, git-ignored
PAGES = sorted(p for p in DOCS.rglob("*.md")
               if not set(p.relative_to(DOCS).parts) & set(GENERATED)) + [ROOT / "README.md"]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_code_blocks_run(page, monkeypatch, tmp_path):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
    namespace = {}
    for block in blocks:
        exec(compile(block, str(page), "exec"), namespace)


def test_sphinx_build_is_clean(tmp_path, monkeypatch):
    """The documentation builds with warnings as errors, from a fresh copy of docs/ so that
    every gallery script runs (sphinx-gallery skips scripts it ran before, unchanged)."""
    for module in ("myst_parser", "numpydoc", "pydata_sphinx_theme", "sphinx_gallery"):
        pytest.importorskip(module)
    from sphinx.cmd.build import build_main

    monkeypatch.setenv("MPLBACKEND", "Agg")
    source = tmp_path / "docs"
    shutil.copytree(DOCS, source, ignore=shutil.ignore_patterns(*GENERATED, "__pycache__",
                                                                 "sg_execution_times.rst"))
    status = build_main(["-W", "--keep-going", "-q", "-b", "html", "-d", str(tmp_path / "doctrees"),
                         str(source), str(tmp_path / "html")])
    assert status == 0
    for script in (DOCS / "examples").glob("plot_*.py"):  # each shows at least one figure
        assert list((tmp_path / "html" / "_images").glob(f"sphx_glr_{script.stem}_0*.png"))
