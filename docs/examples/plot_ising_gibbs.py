r"""
Gibbs sampling an Ising model, checked against exact marginals
==============================================================

A 6x6 Ising lattice, :math:`E(s) = -\sum_{(i,j)} J_{ij} s_i s_j - \sum_i h_i s_i` with spins
:math:`s_i \in \{-1, +1\}`, has :math:`2^{36}` states, too many to list but few for variable
elimination: the exact marginals :math:`P(s_i = +1)` and pair moments :math:`E[s_i s_j]` come from one
forward and one backward sweep. Compiled Gibbs chains must reproduce them; how fast they do
is read from the autocorrelation of their output.
"""

import matplotlib.figure
import numpy as np

import pgm_energy as pe

L = 6
edges = [(r * L + c, r * L + c + 1) for r in range(L) for c in range(L - 1)]
edges += [(r * L + c, (r + 1) * L + c) for r in range(L - 1) for c in range(L)]
fields = 0.3 * np.random.default_rng(0).standard_normal(L * L)
model = pe.Ising(edges, couplings=0.3, fields=fields)
print("treewidth of the elimination order:", pe.exact.treewidth(model))

# %%
# Exact and sampled marginals
# ---------------------------
# 200 independent chains, 100 sweeps of burn-in, then 200 sweeps each: 40 000 (correlated)
# states. Each point is one spin (left) or one coupled pair (right).

singles, pairs, pair_moments = pe.exact.marginals(model, pairwise=True)
sampler = pe.GibbsSampler(model, n_chains=200, rng=0)
s = sampler.sample(200, burn_in=100)["s"]       # (200 sweeps, 200 chains, 36)
sampled_p = (s == 1).mean(axis=(0, 1))
sampled_pairs = (s[..., pairs[:, 0]] * s[..., pairs[:, 1]]).mean(axis=(0, 1))
print(f"largest error: P(s_i = +1) "
      f"{np.abs(sampled_p - singles['s']).max():.4f}, "
      f"E[s_i s_j] {np.abs(sampled_pairs - pair_moments).max():.4f}")

fig = matplotlib.figure.Figure(figsize=(8, 4), layout="constrained")
left, right = fig.subplots(1, 2)
panels = [(left, singles["s"], sampled_p, "P(s_i = +1)"),
          (right, pair_moments, sampled_pairs, "E[s_i s_j]")]
for ax, exact, sampled, what in panels:
    ax.plot(exact, sampled, "o", markersize=4)
    ax.axline((0, 0), slope=1, color="gray", linewidth=0.8)
    ax.set(xlabel=f"exact {what}", ylabel=f"Gibbs {what}", aspect="equal")

# %%
# Mixing
# ------
# The magnetisation :math:`m = \frac{1}{n} \sum_i s_i` of each chain is a time series. Its
# autocorrelation :math:`\rho(t)` and integrated time :math:`\tau = 1 + 2 \sum_t \rho(t)` say how
# many sweeps one independent sample costs. Near the critical coupling of the square
# lattice, :math:`J_c = \tfrac{1}{2} \log(1 + \sqrt{2}) \approx 0.44`, single-spin updates slow
# down (critical slowing down).

fig = matplotlib.figure.Figure(figsize=(6, 4), layout="constrained")
ax = fig.subplots()
for coupling in (0.2, 0.3, 0.44):
    lattice = pe.Ising(edges, couplings=coupling)
    chains = pe.GibbsSampler(lattice, n_chains=50, rng=0)
    # the magnetisation of each chain after each sweep: (500 sweeps, 50 chains)
    magnetisation = chains.sample(500, burn_in=100)["s"].mean(axis=2)
    pe.plotting.plot_autocorrelation(magnetisation, max_lag=60, ax=ax,
                                     label=f"J = {coupling}")

# %%
# Parallel tempering
# ------------------
# Replicas at several inverse temperatures swap states, accepted with probability
# :math:`\min(1, e^{(\beta_k - \beta_{k+1})(E_k - E_{k+1})})`. A rate near 0 cuts the ladder in
# two; rates near 1 everywhere mean more temperatures than needed.

cold = pe.Ising(edges, couplings=0.6)
pt = pe.ParallelTempering(cold, np.linspace(1.0, 0.3, 8), n_chains=20, rng=0)
fig = pe.plotting.plot_swap_rates(pt.run(300))
