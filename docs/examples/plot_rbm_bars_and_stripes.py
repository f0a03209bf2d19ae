r"""
An RBM learns bars and stripes
==============================

The 14 bars-and-stripes images of 3x3 pixels (every row, or every column, all on or all
off) are small enough for exact answers: with 9 visible units, :math:`\log Z` and the
log-likelihood :math:`\log P(x) = -F(x) - \log Z` are sums over :math:`2^9` states. We train a
restricted Boltzmann machine :math:`E(x, h) = -b \cdot x - c \cdot h - h^\top W x` by
persistent contrastive divergence (PCD) and watch the exact log-likelihood climb towards
its optimum :math:`-\log 14 \approx -2.64`, reached by a model that puts all its mass evenly on
the 14 images.
"""

import numpy as np

import pgm_energy as pe
from pgm_energy.cli import bars_and_stripes

X = bars_and_stripes(3)  # (14, 9)
print(X.shape)

# %%
# Training
# --------
# PCD keeps 1000 persistent Gibbs chains for the negative phase, 5 sweeps per update, and
# SGD with momentum follows the estimated gradient with a step that decays from 0.2 by a
# factor 0.998 per epoch (PCD with SGD on an RBM runs whole epochs in compiled code). A
# callback ``f(model, epoch, history)`` records the exact mean log-likelihood every 50
# epochs; ``exact_epoch`` tells :func:`~pgm_energy.plotting.plot_history` when.


def exact_log_likelihood(model, epoch, history):
    if epoch % 50 == 0:
        history.setdefault("exact_epoch", []).append(epoch)
        history.setdefault("exact_log_likelihood", []).append(
            pe.exact.log_likelihood(model, X).mean())


model = pe.RBM(9, 32, rng=0)
step = pe.learning.exponential_decay(0.2, 0.998)        # epoch -> lr
history = pe.fit(model, X, method=pe.PCD(n_chains=1000, k=5),
                 optimizer=pe.SGD(lr=step, momentum=0.9),
                 epochs=2000, batch_size=14, rng=0, verbose=0,
                 callbacks=[exact_log_likelihood])
optimum = -np.log(len(X))
final = pe.exact.log_likelihood(model, X).mean()
print(f"mean log P(x) = {final:.3f} nats, optimum {optimum:.3f}")

fig = pe.plotting.plot_history(
    history, reference={"exact_log_likelihood": optimum})

# %%
# Filters
# -------
# Row :math:`j` of :math:`W`, drawn as a 3x3 image, is the pattern hidden unit :math:`j` responds to: most
# hidden units pick out a bar or a stripe.

fig = pe.plotting.plot_filters(model, (3, 3))

# %%
# Exact samples
# -------------
# ``pe.exact.sample`` draws independent samples of the trained model by variable
# elimination, with no Markov chain. Most of them are bars or stripes; their share
# matches the model's exact probability of the data set, :math:`\sum_{x \in X} P(x)`,
# up to the sampling error of 100 draws.

samples = pe.exact.sample(model, 100, rng=0)
fig = pe.plotting.plot_samples(samples["x"], (3, 3), data=X)

hits = (samples["x"][:, None, :] == X[None]).all(axis=2).any(axis=1).mean()
print(f"exact samples that are bars or stripes: {hits:.2f}; "
      f"P(data set) = {np.exp(pe.exact.log_likelihood(model, X)).sum():.3f}")
