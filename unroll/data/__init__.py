"""The data: Gaussian-process sequences and their diffusion.

- ``kernels``: the temporal kernels ``gamma(m)`` (gamma-exponential, Matérn, logarithmic, polynomial, damped
  cosine) with their decay parameters ``nu`` and ``ell``;
- ``gp``: ``GaussianProcess``, the data ``x (H, d)`` with covariance ``Gamma ⊗ Sigma``, its exact score at every
  diffusion time and its samples;
- ``gp_spec``: the GP of a run as plain fields (``GPSpec``) and the two constructions of ``Sigma``;
- ``diffusion``: the variance-preserving forward process ``x_t = alpha_t x_0 + sigma_t z``.

Structured linear algebra for long sequences is in ``unroll.linalg``.
"""

__all__: list[str] = []  # the names live in the sub-modules above
