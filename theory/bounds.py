"""Bounds on the parts of the score error (DESIGN.md section 6).

Placeholder until the theory issue lands: ``attach_bounds`` is the hook that ``unroll.verify`` calls to
fill each error part's ``bound``.
"""

from __future__ import annotations

from typing import Any


def attach_bounds(report: Any, gp: Any, model: Any, diffusion_time: float) -> None:
    """Fill ``report.parts[name].bound`` for each error part; the placeholder leaves them ``None``."""
    return None
