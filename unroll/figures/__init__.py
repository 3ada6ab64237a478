"""Figures, drawn by the toolkit's own computations; matplotlib is optional and imported inside the functions.

- ``gallery``: the figures of the docs (``unroll figures --out DIR``), each computed when drawn;
- ``comparison``: the figures of a comparison, drawn from the ``results.json`` of ``unroll compare``.

Every figure function returns a ``matplotlib.figure.Figure`` and leaves pyplot and the backend alone.
"""

__all__: list[str] = []  # the names live in the sub-modules above
