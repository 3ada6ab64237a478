"""Token layout with named slots: ``z_i = [ y_i | x_i | e_i | phi(t) | 1 | scratch... ]`` (docs/design.md §5).

The constructor writes weights by naming slots (``layout["y"]`` is a ``slice``) and a residual stream
``(..., H, D)`` can be decoded back into its named parts.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

__all__ = ["TokenLayout"]


class TokenLayout:
    """An ordered set of named, contiguous slots of a token of width ``D``.

    Example: ``TokenLayout([("y", d), ("x", d), ("e", 2), ("phi", 3), ("one", 1)])``.
    """

    def __init__(self, slots: Iterable[tuple[str, int]]) -> None:
        self._slices: dict[str, slice] = {}
        start = 0
        for name, size in slots:
            if name in self._slices:
                raise ValueError(f"slot name {name!r} appears twice")
            if int(size) < 1:
                raise ValueError(f"slot {name!r} must have size >= 1, got {size}")
            self._slices[name] = slice(start, start + int(size))
            start += int(size)
        if not self._slices:
            raise ValueError("a token layout needs at least one slot")
        self.width = start

    @property
    def names(self) -> list[str]:
        return list(self._slices)

    def __contains__(self, name: str) -> bool:
        return name in self._slices

    def __getitem__(self, name: str) -> slice:
        try:
            return self._slices[name]
        except KeyError:
            raise KeyError(f"no slot {name!r}; slots are {self.names}") from None

    def size(self, name: str) -> int:
        s = self[name]
        return s.stop - s.start

    def index(self, name: str, offset: int = 0) -> int:
        """Coordinate index of entry ``offset`` of slot ``name``."""
        if not 0 <= offset < self.size(name):
            raise IndexError(f"offset {offset} outside slot {name!r} of size {self.size(name)}")
        return self[name].start + offset

    def decode(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split ``z (..., D)`` into ``{name: z[..., slot]}``."""
        if z.shape[-1] != self.width:
            raise ValueError(f"z must have last dimension D = {self.width}, got {tuple(z.shape)}")
        return {name: z[..., s] for name, s in self._slices.items()}

    def as_list(self) -> list[tuple[str, int]]:
        return [(name, s.stop - s.start) for name, s in self._slices.items()]

    def __repr__(self) -> str:
        return "TokenLayout(" + " | ".join(f"{n}:{k}" for n, k in self.as_list()) + f"; D={self.width})"
