"""Pure-numpy twins of the kernels and brute-force oracles, for the tests (not shipped).

* ``exact``: brute-force enumeration (joint probabilities, log Z, expectations) and the
  twins of the elimination kernels (``contract``, the sweeps, the order search);
* ``gibbs``: the twin of the Gibbs kernels, with the kernels' xoshiro256+ draws;
* ``ais``: the twin of ``_ais.anneal_bipartite`` (the AIS benchmark's numpy baseline too).

Tests import them as ``from reference import exact as ref`` (pytest puts ``tests/`` on the
path).
"""
