"""Every ```python block of the docs and the README runs (in page order, one namespace per
page)."""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_code_blocks_run(page, monkeypatch, tmp_path):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
    namespace = {}
    for block in blocks:
        exec(compile(block, str(page), "exec"), namespace)


def test_sphinx_build_is_clean(tmp_path):
    """The documentation builds with warnings as errors (API pages from the docstrings)."""
    pytest.importorskip("myst_parser")
    pytest.importorskip("numpydoc")
    from sphinx.cmd.build import build_main

    status = build_main(["-W", "--keep-going", "-q", "-b", "html", "-d", str(tmp_path / "doctrees"),
                         str(ROOT / "docs"), str(tmp_path / "html")])
    assert status == 0
