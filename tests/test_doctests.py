"""The Examples sections of the docstrings run (against the imported, installed package)."""
import doctest
import importlib
import pkgutil

import pytest

import pgm_energy

MODULES = sorted(name for _, name, _ in pkgutil.walk_packages(pgm_energy.__path__, "pgm_energy.")
                 if not name.rsplit(".", 1)[-1].startswith("_") and name != "pgm_energy.sklearn")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, monkeypatch, tmp_path):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"


def test_sklearn_docstring_examples():
    pytest.importorskip("sklearn")
    result = doctest.testmod(importlib.import_module("pgm_energy.sklearn"),
                             optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
