"""The Gaussian process of a run as plain fields, and the two constructions of its spatial covariance Sigma.

Every command describes its data by one :class:`GPSpec` (kernel family, ``nu``, ``ell``, ``period``, ``H``, ``d``
and how Sigma is built), so that a results file can name the GP field by field and rebuild it
(``unroll.provenance.rebuild``).  Sigma is either

- ``spatial="random"``: :func:`random_spatial_covariance`, ``Q diag(mu) Q^T`` with a random orthogonal ``Q`` and
  eigenvalues ``mu`` log-uniform in ``[1, spatial_condition]``, drawn from ``spatial_seed``; or
- ``spatial="correlated"``: :func:`correlated_spatial_covariance`, the fixed ``Sigma[a, b] = rho^|a - b|`` with
  ``rho = spatial_correlation`` (the comparison of record's).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

__all__ = ["SPATIAL_KINDS", "DEFAULT_NU", "DEFAULT_PERIOD", "GPSpec", "random_spatial_covariance",
           "correlated_spatial_covariance"]

#: how Sigma is built: drawn from a seed, or the fixed correlation matrix ``rho^|a-b|``
SPATIAL_KINDS = ("random", "correlated")
#: ``nu`` when not given, for the kernels that have a decay exponent
DEFAULT_NU = 1.0
#: ``period`` when not given, for the damped cosine (frames per oscillation)
DEFAULT_PERIOD = 6.0


def random_spatial_covariance(dim: int, seed: int, condition: float = 4.0) -> torch.Tensor:
    """A seeded symmetric positive-definite ``(dim, dim)`` matrix ``Q diag(mu) Q^T`` (float64).

    ``Q`` is a random orthogonal matrix and the eigenvalues ``mu`` are spread log-uniformly over
    ``[1, condition]``, so the condition number is at most ``condition``.
    """
    generator = torch.Generator().manual_seed(seed)
    orthogonal, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    eigenvalues = condition ** torch.rand(dim, generator=generator, dtype=torch.float64)
    return (orthogonal * eigenvalues) @ orthogonal.T


def correlated_spatial_covariance(dim: int, correlation: float = 0.5) -> torch.Tensor:
    """The ``(dim, dim)`` matrix ``Sigma[a, b] = rho^|a - b|`` (float64), positive definite for ``-1 < rho < 1``."""
    if not -1 < correlation < 1:
        raise ValueError(f"spatial_correlation must satisfy -1 < rho < 1, got {correlation}")
    index = torch.arange(dim, dtype=torch.float64)
    return correlation ** (index[:, None] - index[None, :]).abs()


@dataclass(frozen=True)
class GPSpec:
    """A Gaussian process as fields: ``Gamma`` from the named kernel on ``frames`` frames, Sigma ``dim x dim``.

    ``nu=None`` takes ``DEFAULT_NU`` (the damped cosine has no ``nu``: it must stay ``None``); ``period`` is for the
    damped cosine only (``None``: ``DEFAULT_PERIOD``).  ``spatial_seed`` and ``spatial_condition`` apply to
    ``spatial="random"``, ``spatial_correlation`` to ``spatial="correlated"``.
    """

    kernel: str = "gamma-exponential"
    nu: float | None = None
    ell: float = 2.0
    period: float | None = None
    frames: int = 32
    dim: int = 4
    spatial: str = "random"
    spatial_seed: int = 0
    spatial_condition: float = 4.0
    spatial_correlation: float = 0.5

    def kernel_object(self) -> Any:
        """The kernel (``unroll.data.kernels.kernel_from_name``); ``ValueError`` for a parameter the family refuses."""
        from unroll.data.kernels import DampedCosine, kernel_from_name

        if self.kernel == DampedCosine.name:
            period = DEFAULT_PERIOD if self.period is None else self.period
            return kernel_from_name(self.kernel, nu=self.nu, ell=self.ell, period=period)
        nu = DEFAULT_NU if self.nu is None else self.nu
        return kernel_from_name(self.kernel, nu=nu, ell=self.ell, period=self.period)

    def spatial_covariance(self) -> torch.Tensor:
        """Sigma ``(d, d)`` (module docstring)."""
        if self.spatial == "random":
            return random_spatial_covariance(self.dim, self.spatial_seed, self.spatial_condition)
        if self.spatial == "correlated":
            return correlated_spatial_covariance(self.dim, self.spatial_correlation)
        raise ValueError(f"spatial must be one of {', '.join(SPATIAL_KINDS)}, got {self.spatial!r}")

    def build(self) -> Any:
        """The validated ``unroll.data.gp.GaussianProcess``."""
        from unroll.data.gp import GaussianProcess

        return GaussianProcess(self.kernel_object(), self.frames, self.spatial_covariance()).validate()

    def to_dict(self) -> dict[str, Any]:
        """The fields that define this GP (``nu`` and ``period`` resolved; the Sigma fields of the other kind
        left out), JSON-ready; :meth:`from_dict` inverts it."""
        kernel = self.kernel_object()
        out = asdict(self)
        out["nu"] = getattr(kernel, "nu", None) if self.kernel != "damped-cosine" else None
        out["period"] = getattr(kernel, "period", None)
        for name in (("spatial_correlation",) if self.spatial == "random" else ("spatial_seed", "spatial_condition")):
            del out[name]
        return out

    @classmethod
    def from_dict(cls, fields_: dict[str, Any]) -> GPSpec:
        """The spec of a :meth:`to_dict` record; unknown keys are refused (``ValueError`` naming them)."""
        names = {f.name for f in fields(cls)}
        unknown = set(fields_) - names
        if unknown:
            raise ValueError(f"a GP spec has the fields {sorted(names)}; got unknown {sorted(unknown)}")
        return cls(**fields_)
