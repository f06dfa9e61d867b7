"""Build of the optional native kernels (camforensics/runtime/_kernels.c); everything else is in pyproject.toml.

The extension is optional: where no C compiler is available the install goes on without it and the engine uses its
OpenCV implementation (same results within float tolerance; `camforensics info` and the benchmarks say which one ran).
"""

import sys

from setuptools import Extension, setup

args = ["/O2"] if sys.platform == "win32" else ["-O3", "-std=c99", "-fno-math-errno"]
setup(
    ext_modules=[
        Extension("camforensics.runtime._kernels", ["camforensics/runtime/_kernels.c"], extra_compile_args=args, optional=True)
    ]
)
