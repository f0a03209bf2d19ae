"""The verification kit: its checks pass correct terms, models and samplers, and catch
planted bugs (a checker that cannot fail is a defect)."""
import numpy as np
import pytest
from hypothesis import given, settings

import pgm_energy as pe
from pgm_energy import testing as T

from test_terms import MODELS, CountPenalty, Parity


class WrongSignGrad(CountPenalty):
    def energy_grad(self, state):
        return {k: -v for k, v in super().energy_grad(state).items()}


class WrongShapeGrad(CountPenalty):
    def energy_grad(self, state):
        return {self.param_names[0]: np.zeros(3)}


class HalfLateralSampler:
    """A Gibbs sampler that forgets the lateral factor 2 (a classic bug)."""

    def __init__(self, model, n_chains, rng):
        self.model = model
        self.rng = np.random.default_rng(rng)
        self.state = {g: self.rng.integers(0, 2, (n_chains, u.n)).astype(float)
                      for g, u in model.units.items()}

    def run(self, n_sweeps):
        p = self.model.params
        for _ in range(n_sweeps):
            for i in range(self.model.units["x"].n):
                f = p["b"][i] + self.state["h"] @ p["W"][:, i] + self.state["x"] @ p["U"][i]
                self.state["x"][:, i] = self.rng.random(len(f)) < 1 / (1 + np.exp(-f))
            for j in range(self.model.units["h"].n):
                f = p["c"][j] + self.state["x"] @ p["W"][j] + 2 * self.state["h"] @ p["V"][j]
                self.state["h"][:, j] = self.rng.random(len(f)) < 1 / (1 + np.exp(-f))
        return self


def strong_bm():
    model = pe.BoltzmannMachine(3, 2, rng=0)
    rng = np.random.default_rng(1)
    for name, v in model.params.items():
        v[...] = 1.5 * rng.normal(size=v.shape)
        if name in ("U", "V"):
            v[...] = np.triu(v, 1) + np.triu(v, 1).T
    return model


def test_check_term_passes_correct_terms():
    assert "match" in T.check_term(CountPenalty("x", k=2, theta=0.5))
    assert "compiled form" in T.check_term(pe.Lateral("x"), {"x": 4})
    assert "compiled form" in T.check_term(pe.Pairwise("h", "x"), {"h": 2, "x": pe.Spin(3)})
    assert "match" in T.check_term(Parity("s", 0.3), {"s": pe.Spin(3)})


def test_check_term_catches_a_wrong_sign_and_a_wrong_shape():
    with pytest.raises(AssertionError, match="central differences"):
        T.check_term(WrongSignGrad("x", k=2, theta=0.5))
    with pytest.raises(AssertionError, match="shape"):
        T.check_term(WrongShapeGrad("x", k=2))


def test_check_term_catches_a_wrong_compiled_form():
    class BadBias(pe.Bias):
        def compile(self, offsets):
            lin = super().compile(offsets)[0]
            return [type(lin)(lin.param, lin.i, lin.j, 2 * lin.coef)]

    with pytest.raises(AssertionError, match="compiled form"):
        T.check_term(BadBias("x", value=[1.0, 2.0, 0.5, -1.0]), {"x": 4})


def test_check_model_passes_correct_models():
    assert "exact identities hold" in T.check_model(MODELS["count"])
    assert "exact identities hold" in T.check_model(strong_bm())


def test_check_sampler_catches_a_factor_two_error():
    model = strong_bm()
    assert "agrees" in T.check_sampler(lambda m, n, r: pe.GibbsSampler(m, n, rng=r), model)
    with pytest.raises(AssertionError, match="chi-square"):
        T.check_sampler(HalfLateralSampler, model)


def test_check_sampler_with_several_samples_per_chain():
    """Successive sweeps of 400 chains, deflated by their integrated time: a correct sampler
    passes (checked for rng 0..99) and the factor-two bug is still caught."""
    model = strong_bm()
    report = T.check_sampler(lambda m, n, r: pe.GibbsSampler(m, n, rng=r), model,
                             n_chains=400, n_sweeps=100, n_samples=100)
    assert "agrees" in report and "tau = 1" in report
    with pytest.raises(AssertionError, match="400 chains x 100 samples"):
        T.check_sampler(HalfLateralSampler, model, n_chains=400, n_sweeps=100, n_samples=100)


@pytest.mark.parametrize("n_samples, error", [(2, ValueError), (0, ValueError),
                                              (4.0, TypeError)])
def test_check_sampler_rejects_bad_n_samples(n_samples, error):
    with pytest.raises(error, match="n_samples"):
        T.check_sampler(HalfLateralSampler, strong_bm(), n_samples=n_samples)


def penalty_theta(n, rng):
    """theta in [-1.5 / (n - 1)^2, 0.4] for a CountPenalty theta (m - 1)^2 on n units,
    m = sum x. Both signs make barriers for single-unit moves: a negative theta makes
    all-on and all-off two modes (n - 1)^2 |theta| apart; a positive one a floor of several
    states with the same m, between which a move costs up to 4 theta (spins). Kept low, with
    weak other couplings, so that the sampler check's 200 sweeps mix from any start (theta =
    -2.5 on 4 spins, or 1.5 on 3, or laterals of 0.6 on 4 spins, did not: the sampler then
    matched the exact 30-sweep law, not the joint)."""
    return rng.uniform(-1.5 / max(n - 1, 1) ** 2, 0.4)


@settings(max_examples=10)
@given(T.models(max_total=6, large_weights=False, scale=0.2,
                extra_terms=[lambda g, u, rng: CountPenalty(g, k=1, theta=penalty_theta(u.n, rng),
                                                             name=f"theta_{g}")]))
def test_strategies_with_a_users_term_pass_every_check(model):
    T.check_model(model)


class ChainWithDelta(pe.Term):
    """E = -J sum_i x_i x_{i+1} with a closed-form delta_energy (right, or off by a sign)."""

    def __init__(self, group, J=0.7, wrong=False):
        super().__init__(groups=(group,), params={"J": np.array(J)})
        self.wrong = wrong

    def energy(self, state):
        x = state[self.groups[0]]
        return -self.params["J"] * (x[:, :-1] * x[:, 1:]).sum(axis=1)

    def energy_grad(self, state):
        x = state[self.groups[0]]
        return {"J": -(x[:, :-1] * x[:, 1:]).sum(axis=1)}

    def delta_energy(self, state, group, unit, values):
        x = state[group]
        n = x.shape[1]
        neighbours = sum(x[:, j] for j in (unit - 1, unit + 1) if 0 <= j < n)
        delta = -self.params["J"] * (values[1] - values[0]) * neighbours
        return -delta if self.wrong else delta


def test_check_term_checks_a_fast_delta_energy():
    assert "delta_energy matches" in T.check_term(ChainWithDelta("s"), {"s": pe.Spin(5)})
    with pytest.raises(AssertionError, match="delta_energy"):
        T.check_term(ChainWithDelta("s", wrong=True), {"s": pe.Spin(5)})


def test_sampler_uses_a_terms_delta_energy():
    model = pe.EnergyModel({"s": pe.Spin(5)}, [pe.Bias("s", value=[0.2, 0, -0.1, 0, 0.3]),
                                               ChainWithDelta("s", J=0.8)])
    assert "agrees" in T.check_sampler(lambda m, n, r: pe.GibbsSampler(m, n, rng=r), model)


# -- check_term's save/load round trip ---------------------------------------------------------
class Window(pe.Term):
    """E = -theta * sum_{i in window} x_i; ``window`` a tuple, as users write them."""

    def __init__(self, group, window=(0, 1), theta=0.0, name="theta"):
        super().__init__(groups=(group,), params={name: np.array(theta)})
        self.window = window

    def config(self):
        return {"group": self.groups[0], "window": self.window, "name": self.param_names[0]}

    def energy(self, state):
        return -self.params[self.param_names[0]] * state[self.groups[0]][:, list(self.window)].sum(1)

    def energy_grad(self, state):
        return {self.param_names[0]: -state[self.groups[0]][:, list(self.window)].sum(1)}


class ForgetfulWindow(Window):
    """config() leaves out the window: a loaded term has the default one."""

    def config(self):
        return {"group": self.groups[0], "name": self.param_names[0]}


class UnsavableWindow(Window):
    def config(self):
        return {**super().config(), "window": range(2)}


def test_check_term_checks_the_save_load_round_trip():
    assert "config() and parameters round-trip" in T.check_term(Window("x", (1, 3), 0.5))
    assert "attributes and parameters round-trip" in T.check_term(
        CountPenalty("x", k=2, theta=0.5))
    with pytest.raises(AssertionError, match="other energies"):
        T.check_term(ForgetfulWindow("x", (1, 3), 0.5))
    with pytest.raises(AssertionError, match="does not survive save/load.*range"):
        T.check_term(UnsavableWindow("x", (1, 3), 0.5))


# -- pe.testing as an attribute ---------------------------------------------------------------
def test_pe_testing_is_an_attribute():
    assert pe.testing is T and "testing" in dir(pe)


def test_pe_testing_without_hypothesis_names_the_extra(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys\n"
            "sys.modules['hypothesis'] = None\n"     # as if hypothesis were not installed
            "import pgm_energy as pe\n"
            "assert 'pgm_energy.testing' not in sys.modules\n"
            "try:\n    pe.testing\nexcept ImportError as exc:\n    print(exc)\n")
    root = str(Path(pe.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert 'pip install "pgm_energy[test]"' in run.stdout and "hypothesis" in run.stdout


# -- closed-form references -------------------------------------------------------------------
def chain_model(n, J, h, periodic):
    edges = [(i, i + 1) for i in range(n - 1)] + ([(n - 1, 0)] if periodic else [])
    return pe.Ising(edges, np.full(len(edges), J), np.full(n, h))


def torus_model(L1, L2, J):
    edges = [(r * L2 + c, r * L2 + (c + 1) % L2) for r in range(L1) for c in range(L2)]
    edges += [(r * L2 + c, ((r + 1) % L1) * L2 + c) for r in range(L1) for c in range(L2)]
    return pe.Ising(edges, np.full(len(edges), J))


def brute_log_z(model, beta):
    states, _ = T.brute_force(model)
    return float(np.logaddexp.reduce(-beta * model.energy(states)))


@pytest.mark.parametrize("n", [1, 2, 3, 5, 9, 30])
@pytest.mark.parametrize("periodic", [False, True])
@pytest.mark.parametrize("J, h, beta", [(1.0, 0.3, 0.7), (-1.2, 0.5, 1.0), (0.5, -2.0, 2.0),
                                        (0.0, 0.4, 1.0), (300.0, 1.0, 1.0)])
def test_ising_chain_log_partition(n, periodic, J, h, beta):
    if periodic and n < 3:
        with pytest.raises(ValueError, match="n must be >= 3"):
            T.ising_chain_log_partition(n, J, h, beta, periodic=True)
        return
    model = chain_model(n, J, h, periodic)
    want = brute_log_z(model, beta) if n <= 9 else pe.exact.log_partition(model, beta=beta)
    got = T.ising_chain_log_partition(n, J, h, beta, periodic=periodic)
    assert got == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("n", [1, 2, 3, 6, 11])
@pytest.mark.parametrize("J, h, beta", [(1.0, 0.3, 0.7), (-1.2, 0.5, 1.0), (2.0, -0.4, 1.3),
                                        (1.0, 0.0, 1.0)])
def test_curie_weiss_log_partition(n, J, h, beta):
    edges = [(i, j) for i in range(n) for j in range(i + 1, n)]
    model = pe.Ising(edges, np.full(len(edges), J / n), np.full(n, h))
    want = brute_log_z(model, beta)
    assert T.curie_weiss_log_partition(n, J, h, beta) == pytest.approx(want, rel=1e-10)
    assert pe.exact.log_partition(model, beta=beta) == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("L1, L2", [(3, 3), (3, 4), (4, 3), (4, 4), (3, 5)])
@pytest.mark.parametrize("J, beta", [(1.0, 0.2), (1.0, np.log1p(np.sqrt(2)) / 2), (1.0, 0.7),
                                     (2.0, 3.0), (-0.5, 1.0)])
def test_ising_torus_log_partition_small(L1, L2, J, beta):
    if J < 0 and (L1 % 2 or L2 % 2):
        with pytest.raises(ValueError, match="frustrated"):
            T.ising_torus_log_partition(L1, L2, J, beta)
        return
    want = brute_log_z(torus_model(L1, L2, J), beta)
    assert T.ising_torus_log_partition(L1, L2, J, beta) == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("L1, L2, J, beta", [(6, 6, 1.0, 0.44), (5, 8, 0.8, 0.5),
                                             (6, 7, 1.0, 1.5)])
def test_ising_torus_log_partition_by_elimination(L1, L2, J, beta):
    model = torus_model(L1, L2, J)
    want = pe.exact.log_partition(model, beta=beta, method="eliminate")
    assert T.ising_torus_log_partition(L1, L2, J, beta) == pytest.approx(want, rel=1e-10)


def test_closed_forms_limits_and_arguments():
    assert T.ising_torus_log_partition(5, 6, 0.0) == pytest.approx(30 * np.log(2), rel=1e-15)
    # strong coupling: the two ground states, E = -2 L1 L2 J
    assert T.ising_torus_log_partition(6, 6, 1000.0) == pytest.approx(72000 + np.log(2),
                                                                      rel=1e-15)
    assert np.isfinite(T.ising_torus_log_partition(200, 300, 1.0, 0.44))
    assert T.curie_weiss_log_partition(10**5, 1.0, 0.1) > 0
    for bad in (0, 2.0, True):
        with pytest.raises((TypeError, ValueError), match="L1"):
            T.ising_torus_log_partition(bad, 4, 1.0)
    with pytest.raises(ValueError, match="finite"):
        T.ising_torus_log_partition(4, 4, np.inf)


def test_check_term_catches_tuples_that_come_back_as_lists(monkeypatch):
    from pgm_energy import _format

    def as_lists(value):            # what JSON alone does: every tuple becomes a list
        if isinstance(value, dict) and set(value) == {"__tuple__"}:
            value = value["__tuple__"]
        if isinstance(value, list):
            return [as_lists(v) for v in value]
        return {k: as_lists(v) for k, v in value.items()} if isinstance(value, dict) else value

    monkeypatch.setattr(_format, "_from_json", as_lists)
    with pytest.raises(AssertionError, match="'window' does not round-trip"):
        T.check_term(Window("x", (1, 3), 0.5))
