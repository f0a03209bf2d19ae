"""Presets: RBM, BoltzmannMachine and Ising, built from the same terms, with their own
argument checks."""
import ast
import pathlib

import numpy as np
import pytest

import pgm_energy as pe
import pgm_energy.model
import pgm_energy.presets


def test_presets_live_in_presets_and_model_imports_only_layers_below_it():
    assert (pe.RBM, pe.BoltzmannMachine, pe.Ising) == (
        pgm_energy.presets.RBM, pgm_energy.presets.BoltzmannMachine, pgm_energy.presets.Ising)
    assert not any(hasattr(pgm_energy.model, name) for name in ("RBM", "BoltzmannMachine",
                                                                "Ising"))
    tree = ast.parse(pathlib.Path(pgm_energy.model.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):                   # inside functions too: no hidden cycle
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            imported |= {node.module} if node.module else {a.name for a in node.names}
    # the exact engines (exact.cost and what it imports) depend on the graph and kernels only
    assert imported <= {"_checks", "_format", "exact.cost", "graph", "terms", "units"}


def test_presets_initialise_with_rng_and_accept_arrays():
    a, b = pe.RBM(6, 3, rng=1), pe.RBM(6, 3, rng=1)
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    assert 0 < np.std(a.params["W"]) < 0.05
    assert np.all(a.params["b"] == 0)
    W = np.arange(6.0).reshape(2, 3)
    assert np.array_equal(pe.RBM(3, 2, W=W).params["W"], W)
    bm = pe.BoltzmannMachine(4, 3, rng=0)
    U = bm.params["U"]
    assert np.array_equal(U, U.T) and np.all(np.diag(U) == 0)
    assert set(bm.params) == {"b", "c", "W", "U", "V"}
    spin_rbm = pe.RBM(3, 2, visible_units=pe.Spin)
    assert isinstance(spin_rbm.units["x"], pe.Spin)


def test_ising_preset():
    model = pe.Ising([(0, 1), (1, 2)], couplings=[1.0, -2.0], fields=[0.5, 0.0, 0.0])
    assert isinstance(model.units["s"], pe.Spin) and model.units["s"].n == 3
    assert model.energy({"s": [[1, 1, -1]]})[0] == pytest.approx(-1.0 - 2.0 - 0.5)
    assert set(model.params) == {"J", "h"}
    assert pe.Ising([(0, 1)], n=5).units["s"].n == 5
    # per-spin fields may reach past the edges (isolated spins); scalars broadcast
    assert pe.Ising([(0, 1)], fields=[0.0, 0.0, 1.0]).units["s"].n == 3
    ring = pe.Ising([(0, 1), (1, 2), (2, 0)], couplings=0.5, fields=0.25)
    np.testing.assert_array_equal(ring.params["J"], [0.5] * 3)
    np.testing.assert_array_equal(ring.params["h"], [0.25] * 3)


@pytest.mark.parametrize("make, match", [
    # issue 19: a raw broadcast error and an "edge indices" error before
    (lambda: pe.Ising([(0, 1), (1, 2)], couplings=[1.0, 2.0, 3.0]),
     r"couplings .*one entry per edge: expected length 2, got length 3"),
    (lambda: pe.Ising([(0, 1), (1, 2)], couplings=[1.0]),
     r"couplings .*expected length 2, got length 1"),
    (lambda: pe.Ising([(0, 1), (1, 2)], couplings=np.ones((2, 1))),
     r"couplings .*expected length 2, got shape \(2, 1\)"),
    (lambda: pe.Ising([(0, 1), (1, 2)], fields=[1.0, 2.0]),
     r"fields .*one entry per spin: expected length 3 .*got length 2"),
    (lambda: pe.Ising([(0, 1), (1, 2)], fields=[1.0, 2.0, 3.0, 4.0], n=3),
     r"fields .*expected length n = 3, got length 4"),
    (lambda: pe.Ising([(0, 1)], fields=np.zeros((2, 2))), r"fields .*shape \(2, 2\)"),
    (lambda: pe.Ising([(0, 4)], n=3), r"Ising edges: unit indices must lie in \[0, 3\)"),
    (lambda: pe.Ising([(0, -1)]), r"Ising edges: unit indices must lie in \[0, n\)"),
    (lambda: pe.Ising([]), "give n="),
    (lambda: pe.RBM(4, 2, W=np.ones((4, 2))),
     r"RBM: W must have shape \(2, 4\), got shape \(4, 2\)"),
    (lambda: pe.RBM(4, 2, b=np.ones(3)), r"RBM: b must have shape \(4,\), got shape \(3,\)"),
    (lambda: pe.RBM(4, 2, c=1.0), r"RBM: c must have shape \(2,\), got shape \(\)"),
    (lambda: pe.RBM(4, 2, visible_units=lambda n: pe.Categorical(n, 3), W=np.ones((2, 4))),
     r"RBM: W must have shape \(2, 4, 3\)"),
    (lambda: pe.BoltzmannMachine(3, 2, W=np.ones((3, 2))), r"BoltzmannMachine: W .*\(2, 3\)"),
    (lambda: pe.BoltzmannMachine(3, 2, b=np.ones(2)), r"BoltzmannMachine: b .*\(3,\)"),
    (lambda: pe.BoltzmannMachine(3, 2, c=np.ones(3)), r"BoltzmannMachine: c .*\(2,\)"),
    (lambda: pe.BoltzmannMachine(3, 2, U=np.zeros((2, 2))),
     r"BoltzmannMachine: U must have shape \(3, 3\), got shape \(2, 2\)"),
    (lambda: pe.BoltzmannMachine(3, 2, V=np.zeros((3, 3))),
     r"BoltzmannMachine: V must have shape \(2, 2\), got shape \(3, 3\)"),
    (lambda: pe.BoltzmannMachine(0, 2), "n_visible must be >= 1"),
])
def test_preset_arguments_are_checked(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_preset_argument_types():
    with pytest.raises(TypeError, match="RBM: W must be a numeric array"):
        pe.RBM(2, 1, W="ab")
    with pytest.raises(TypeError, match="n_hidden must be an int"):
        pe.BoltzmannMachine(2, 1.5)
    with pytest.raises(TypeError, match="Ising edges must hold integer unit indices"):
        pe.Ising([(0, 1.5)])
