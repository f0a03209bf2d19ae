"""Build the Cython kernels of pgm_energy.

Environment switches:

* ``PGM_ENERGY_NO_OPENMP=1``  build without OpenMP (kernels then run on one thread).
* ``PGM_ENERGY_DEBUG=1``      bounds checks and assertions on in the kernels.
* ``PGM_ENERGY_ANNOTATE=1``   write Cython's annotated HTML next to each ``.pyx``.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

KERNELS = ["_exact", "_gibbs", "_order", "_eliminate", "_ais", "_learning", "_cluster"]


def _flag(name):
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _openmp_flags(compiler_type):
    """Return (compile, link) flags for OpenMP, or ([], []) if it is off or missing."""
    if _flag("PGM_ENERGY_NO_OPENMP"):
        return [], []
    if compiler_type == "msvc":
        return ["/openmp"], []
    flags = (["-fopenmp"], ["-fopenmp"])
    if sys.platform == "darwin":
        flags = (["-Xpreprocessor", "-fopenmp"], ["-lomp"])
    return flags if _compiles_with(flags) else ([], [])


def _compiles_with(flags):
    """Probe: does a tiny OpenMP program compile and link with these flags?"""
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc.split()[0]) is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void){return omp_get_max_threads() < 1;}\n")
        cmd = cc.split() + flags[0] + [src, "-o", os.path.join(tmp, "probe")] + flags[1]
        return subprocess.run(cmd, capture_output=True).returncode == 0


class BuildExt(build_ext):
    """Add OpenMP flags chosen for the compiler actually used."""

    def build_extensions(self):
        compile_flags, link_flags = _openmp_flags(self.compiler.compiler_type)
        if not compile_flags:
            print("pgm_energy: building without OpenMP (kernels use one thread)")
        for ext in self.extensions:
            ext.extra_compile_args += compile_flags
            ext.extra_link_args += link_flags
        super().build_extensions()


debug = _flag("PGM_ENERGY_DEBUG")
directives = {
    "language_level": 3,
    "boundscheck": debug,
    "wraparound": False,
    "initializedcheck": debug,
    "nonecheck": False,
    "cdivision": True,
}
extensions = [
    Extension(
        f"pgm_energy._kernels.{name}",
        [f"pgm_energy/_kernels/{name}.pyx"],
        include_dirs=[np.get_include(), "pgm_energy/_kernels"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        # -fno-math-errno: no kernel reads errno, and without it GCC keeps a branch around
        # every sqrt (to set errno for negative arguments), which stops loops vectorising
        # (the normal quantile's tails in _random.h). NaN and inf semantics are unchanged.
        extra_compile_args=["-O3", "-fno-math-errno"] if os.name != "nt" else [],
    )
    for name in KERNELS
    if os.path.exists(f"pgm_energy/_kernels/{name}.pyx")
]

setup(
    ext_modules=cythonize(
        extensions, compiler_directives=directives, annotate=_flag("PGM_ENERGY_ANNOTATE")
    ),
    cmdclass={"build_ext": BuildExt},
)
