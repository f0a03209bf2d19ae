"""A user's own energy term, as docs/user_terms.md writes it, for the tests that need a term
with only ``energy`` and ``energy_grad`` (no compiled form: the generic path everywhere)."""
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
