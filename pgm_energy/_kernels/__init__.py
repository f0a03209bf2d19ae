"""The compiled kernels of pgm_energy (private).

The Cython modules here see only C data (typed memoryviews, ints for enums): ``_exact``
(Gray-code enumeration), ``_gibbs`` (block Gibbs sweeps), ``_eliminate`` (variable
elimination), ``_ais`` (annealed importance sampling) and ``_learning`` (the compiled PCD
epoch). Their C lives in the headers beside them: ``_random.h`` (the per-chain random
streams every drawing kernel uses; ``_gibbs.uniforms`` calls it from Python), ``_vecmath.h``
(vectorisable softplus / sigmoid / exp), ``_gibbs.h`` and ``_ais.h`` (the update loops).
The Python faces (``exact``, ``sampling``, ``ais``, ``learning``) validate their inputs
before calling in.
"""
