r"""
A Potts ring: categorical units and their marginals
===================================================

``pe.Categorical(n, k)`` units take values :math:`0, \dots, k-1` and enter pairwise terms as
one-hot vectors. A :math:`k`-state Potts model rewards equal neighbours:
:math:`E(x) = -\sum_{(i,j)} \theta\, [x_i = x_j] - \sum_i b_{i, x_i}`, which is a
``SparsePairwise`` term with tables :math:`J_e = \theta I` and a ``Bias`` of shape :math:`(n, k)`.
Without a field, the ring of :math:`n` sites has the closed form
:math:`Z = (e^\theta + k - 1)^n + (k - 1)(e^\theta - 1)^n` (the transfer matrix has eigenvalues
:math:`e^\theta + k - 1` once and :math:`e^\theta - 1` :math:`k - 1` times).
"""

import matplotlib.figure
import numpy as np

import pgm_energy as pe

n, k, theta = 8, 3, 0.8
ring = [(i, (i + 1) % n) for i in range(n)]
tables = theta * np.stack([np.eye(k)] * n)           # J_e = theta I, (n_edges, k, k)
potts = pe.EnergyModel({"x": pe.Categorical(n, k)},
                       [pe.Bias("x", name="b"),
                        pe.SparsePairwise("x", ring, value=tables)])
closed_form = np.log((np.exp(theta) + k - 1) ** n
                     + (k - 1) * (np.exp(theta) - 1) ** n)
print(f"log Z: exact {pe.exact.log_partition(potts):.12f}, "
      f"closed form {closed_form:.12f}")

# %%
# Marginals of categorical units
# ------------------------------
# A field on site 0 favours value 0; through the couplings, its neighbours lean the same
# way. For a categorical group ``pe.exact.marginals`` returns an array of shape :math:`(n, k)`,
# ``p[i, v]`` :math:`= P(x_i = v)`, each row summing to 1. The Gibbs sampler updates each site from
# its softmax conditional :math:`P(x_i = v \mid \mathrm{rest}) \propto e^{f_{iv}}` in the compiled
# kernel; its states are the integer values.

potts.params["b"][0, 0] = 2.0
exact = pe.exact.marginals(potts)["x"]                       # (8, 3)
x = pe.GibbsSampler(potts, n_chains=500, rng=0).sample(100, burn_in=50)["x"]
sampled = (x[..., None] == np.arange(k)).mean(axis=(0, 1))    # (8, 3)
print("exact P(x_i = v):\n", exact.round(3))
print(f"largest difference from Gibbs: {np.abs(sampled - exact).max():.4f}")

fig = matplotlib.figure.Figure(figsize=(7, 3.2), layout="constrained")
axes = fig.subplots(1, 2, sharey=True)
panels = [(axes[0], exact, "exact"), (axes[1], sampled, "Gibbs, 500 chains")]
for ax, p, title in panels:
    image = ax.imshow(p.T, vmin=0, vmax=1, cmap="viridis")
    ax.set(title=title, xlabel="site i", xticks=range(n), yticks=range(k))
axes[0].set_ylabel("value v")
fig.colorbar(image, ax=axes, label="P(x_i = v)", shrink=0.8)
