"""The construction: transformer weights written by hand so that each block takes one GD step on the quadratic
whose minimiser is the score (docs/design.md §4–§6).

- ``layout``: the token layout with named slots ``z_i = [y_i | x_i | e_i | phi(t) | 1 | scratch...]``;
- ``gd``: the banded GD the network unrolls, its step sizes (constant, Chebyshev), spectra and the plain
  reference loops the network is checked against;
- ``constructor``: ``construct_unrolled``, the trapezoid ReLU heads that pick out the bands ``|i - j| = m``;
- ``softmax``: the softmax variant, one softmax head per block carrying a Gaussian-type temporal kernel.
"""

__all__: list[str] = []  # the names live in the sub-modules above
