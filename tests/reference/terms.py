"""Users' own energy terms, as docs/user_terms.md writes them, for the tests that need terms
with only ``energy`` and ``energy_grad`` (no compiled form: the generic path everywhere):
``CountPenalty`` over discrete units, ``Quartic`` and ``GatedCoupling`` over continuous ones."""
import numpy as np

import pgm_energy as pe


class CountPenalty(pe.Term):
    """E = theta * (sum_i x_i - k)^2, the example term of docs/user_terms.md."""

    def __init__(self, group, k, theta=0.0, name="theta"):
        super().__init__(groups=(group,), params={name: np.array(theta, dtype=float)})
        self.k = k

    def energy(self, state):
        t = self.params[self.param_names[0]]
        return t * (state[self.groups[0]].sum(axis=1) - self.k) ** 2

    def energy_grad(self, state):
        return {self.param_names[0]: (state[self.groups[0]].sum(axis=1) - self.k) ** 2.0}


class Quartic(pe.Term):
    """``E = q sum_i x_i^4`` over one group, through ``energy`` only (no ``compile()``)."""

    def __init__(self, group, q=0.3, name="q"):
        super().__init__(groups=(group,), params={name: np.array(q)})

    def energy(self, state):
        return self.params[self.param_names[0]] * (state[self.groups[0]] ** 4).sum(axis=1)

    def energy_grad(self, state):
        return {self.param_names[0]: (state[self.groups[0]] ** 4).sum(axis=1)}


class GatedCoupling(pe.Term):
    """``E = -t h_0 x_0 x_1``: a binary unit gating the coupling of two continuous ones."""

    def __init__(self, h, x, t=0.4, name="t"):
        super().__init__(groups=(h, x), params={name: np.array(t)})

    def _product(self, state):
        h, x = state[self.groups[0]], state[self.groups[1]]
        return h[:, 0] * x[:, 0] * x[:, 1]

    def energy(self, state):
        return -self.params[self.param_names[0]] * self._product(state)

    def energy_grad(self, state):
        return {self.param_names[0]: -self._product(state)}
