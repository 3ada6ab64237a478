"""unroll: check numerically that a transformer unrolling gradient descent represents the score of
Gaussian-process sequence data.

The packages follow the architecture: ``unroll.data`` (kernels, the GP, diffusion), ``unroll.linalg`` (Toeplitz
and circulant solvers for long sequences), ``unroll.model`` (the generic transformer), ``unroll.construction``
(the token layout, GD and its step schedules, the constructor, the softmax variant), ``unroll.verification``,
``unroll.experiments`` (training, comparison, sweeps), ``unroll.figures`` and ``unroll.cli``.

The most used names are importable from ``unroll`` itself, lazily, so that ``import unroll`` stays cheap and
each sub-module can be used on its own.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: ``{public name: the module that defines it}``; the names in ``_MODULES`` are the modules themselves.
_LAZY = {
    "kernels": "unroll.data.kernels",
    "diffusion": "unroll.data.diffusion",
    "GaussianProcess": "unroll.data.gp",
    "Transformer": "unroll.model.transformer",
    "construct_unrolled": "unroll.construction.constructor",
    "verify": "unroll.verification",
    "linear_response": "unroll.experiments.linear_response",
}
_MODULES = frozenset({"kernels", "diffusion"})

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'unroll' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if name in _MODULES else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
