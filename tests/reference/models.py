"""Random small models for the tests: every group biased, every pair of groups coupled."""
import numpy as np

import pgm_energy as pe


def random_model(units, visible, rng, lateral=(), extra=(), scale=1.0):
    """Biases on every group, a Pairwise term between every two groups, Laterals (zero
    within a categorical site) on the groups in ``lateral``, plus ``extra`` terms; every
    parameter ``N(0, scale^2)`` from ``rng``."""
    terms = [pe.Bias(g, name=f"b_{g}") for g in units]
    names = list(units)
    terms += [pe.Pairwise(a, b, name=f"W_{a}{b}") for k, a in enumerate(names)
              for b in names[k + 1:]]
    terms += [pe.Lateral(g, name=f"U_{g}") for g in lateral]
    model = pe.EnergyModel(units, terms + list(extra), visible=visible)
    for name, value in model.params.items():
        if name.startswith("U_"):
            unit = model.units[name[2:]]
            U = np.triu(rng.normal(size=(unit.width, unit.width)) * scale, 1)
            site = np.arange(unit.width) // (unit.width // unit.n)
            U[site[:, None] == site[None, :]] = 0.0
            value[...] = (U + U.T).reshape(value.shape)
        elif name.startswith(("b_", "W_")):
            value[...] = scale * rng.normal(size=value.shape)
    return model
