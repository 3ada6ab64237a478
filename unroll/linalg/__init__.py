"""Structured linear algebra of stationary covariances, used when ``Gamma`` is too large to factor densely.

- ``toeplitz``: FFT products with symmetric Toeplitz matrices, preconditioned CG, the Gohberg–Semencul inverse
  and the Kronecker-structured solves of ``C_t = alpha_t^2 (Gamma ⊗ Sigma) + sigma_t^2 I``;
- ``circulant``: exact sampling by circulant embedding (Davies–Harte);
- ``symbol``: the extreme eigenvalues of a symmetric Toeplitz matrix, dense or from the range of its symbol.
"""

__all__: list[str] = []  # the names live in the sub-modules above
