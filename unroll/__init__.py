"""unroll: check numerically that a transformer unrolling gradient descent represents the score of
Gaussian-process sequence data.

Public names are imported lazily so that ``import unroll`` stays cheap and each sub-module can be
used on its own.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "kernels": "unroll.kernels",
    "diffusion": "unroll.diffusion",
    "GaussianProcess": "unroll.gp",
    "Transformer": "unroll.transformer",
    "construct_unrolled": "unroll.constructor",
    "verify": "unroll.verification",
    "linear_response": "unroll.linear_response",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'unroll' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if module_name.endswith("." + name) else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
