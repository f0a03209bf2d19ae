"""The compiled kernels of pgm_energy (private).

The Cython modules here see only C data (typed memoryviews, ints for enums): ``_exact``
(Gray-code enumeration), ``_gibbs`` (block Gibbs sweeps), ``_order`` (the elimination order
search), ``_eliminate`` (the elimination sweeps over one checked ``Program``), ``_ais``
(annealed importance sampling) and ``_learning`` (the compiled PCD epoch). Their C lives in
the headers beside them: ``_random.h`` (the per-chain random streams every drawing kernel
uses, and the continuous units' inverse-CDF draws; ``_gibbs.uniforms`` calls it from
Python), ``_vecmath.h`` (vectorisable softplus / sigmoid / exp), ``_gibbs.h`` and ``_ais.h``
(the update loops; ``_gibbs_sweep.h``, the sparse sweep that ``_gibbs.h`` compiles for the
byte and the float64 state), ``_bitset.h`` (the order
search's bit counts) and ``_tables.h`` (elimination tables: memory and block adds).
The Python faces (``exact``, ``sampling``, ``ais``, ``learning``) validate their inputs
before calling in.
"""
