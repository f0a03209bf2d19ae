r"""
AIS estimates of log Z against the exact value
==============================================

Annealed importance sampling (AIS) estimates :math:`\log Z` of models too large to enumerate, by
walking from a model of independent units (:math:`\beta = 0`) to the target (:math:`\beta = 1`). On a
model small enough for ``pe.exact``, the estimates and their error bars can be checked. The
RBM below has 20 visible and 12 hidden units and strong weights; its exact :math:`\log Z` sums
:math:`2^{12}` closed-form terms.
"""

import matplotlib.figure
import numpy as np

import pgm_energy as pe

rng = np.random.default_rng(0)
model = pe.RBM(20, 12, W=rng.normal(0.0, 0.8, size=(12, 20)),
               b=rng.normal(0.0, 0.5, 20), c=rng.normal(0.0, 0.5, 12))
exact = pe.exact.log_partition(model)
print(f"exact log Z = {exact:.4f}")

# %%
# Forward and reverse AIS
# -----------------------
# Forward AIS is unbiased in :math:`Z`, so by Jensen's inequality its :math:`\log Z` is low on
# average (a stochastic lower bound). Reverse AIS starts from exact samples of the model
# (``pe.exact.sample``) and is high on average. With more inverse temperatures (``n_betas``)
# both close in on the exact value, from either side; the error bars are one standard error.

n_betas = [10, 30, 100, 300, 1000]
forward = [pe.ais.log_partition(model, n_betas=n, n_runs=100, rng=0)
           for n in n_betas]
samples = pe.exact.sample(model, 100, rng=1)["x"]
reverse = [pe.ais.reverse_log_partition(model, samples, n_betas=n, rng=0)
           for n in n_betas]
for n, f, r in zip(n_betas, forward, reverse):
    print(f"n_betas = {n:4d}: forward {f.log_z:8.4f} +- {f.stderr:.4f}, "
          f"reverse {r.log_z:8.4f} +- {r.stderr:.4f}")

fig = matplotlib.figure.Figure(figsize=(6, 4), layout="constrained")
ax = fig.subplots()
pe.plotting.plot_log_z(exact, forward, x=n_betas, label="forward AIS", ax=ax)
pe.plotting.plot_log_z(exact, reverse, x=n_betas, xlabel="n_betas",
                       label="reverse AIS", ax=ax)
ax.set_xscale("log")
