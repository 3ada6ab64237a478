"""Bad input over the public API: a clear error naming the parameter, or a finite result — nothing else.

Every test draws arguments (valid ones, extremes, NaN, inf, negative, complex, wrong types and shapes), calls a
public function and asserts through :func:`judge` that either

* it raised ``ValueError`` or ``TypeError`` **from this project's code** (the innermost frame of the traceback is
  in ``unroll/`` or ``theory/``, not inside torch, numpy or scipy) whose message names one of the parameters the
  call could be refused for, or
* it returned, and every number it returned is finite.

Any other exception (``RuntimeError``, ``ZeroDivisionError``, ``OverflowError``, ``MemoryError``, a raw torch
``TypeError``), a ``RuntimeWarning`` (turned into an error for this module) or a NaN in a result fails the test.

Case count of the default suite: the sum of the ``max_examples`` below (``EXAMPLES``), 620 drawn cases, plus the
deterministic per-field config cases; deterministic (``derandomize=True``), about 3 s on one core.
"""

from __future__ import annotations

import dataclasses
import math
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import theory
from unroll.construction.constructor import construct_unrolled
from unroll.data import diffusion
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import NAMED_KERNELS, DampedCosine, GammaExponential, Matern, kernel_from_name
from unroll.experiments.compare import CompareConfig
from unroll.experiments.trainer import TrainConfig
from unroll.model.transformer import Transformer
from unroll.verification import verify

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

ROOT = Path(__file__).resolve().parents[1]
OUR_CODE = (str(ROOT / "unroll") + "/", str(ROOT / "theory") + "/")

#: max_examples of each drawn test (their sum is the suite's drawn case count)
EXAMPLES = {
    "kernel_construction": 60, "kernel_evaluation": 60, "gp_construction": 60, "score_inputs": 80,
    "diffusion_helpers": 80, "samplers": 30, "construction": 60, "transformer": 50, "verify_arguments": 40,
    "configs": 60, "theory": 40,
}
assert sum(EXAMPLES.values()) == 620


def drawn(name: str) -> Any:
    return settings(max_examples=EXAMPLES[name], derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# ------------------------------------------------------------------------------------------------ the judge
def _innermost_file(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    return frames[-1].filename if frames else ""


def _numbers(value: Any) -> Iterable[Any]:
    """Every numeric leaf of a result (tensors, arrays, floats, and those inside lists, tuples, dicts)."""
    if isinstance(value, (torch.Tensor, np.ndarray, float, int, np.floating)) and not isinstance(value, bool):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _numbers(item)


def _finite(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return bool(torch.isfinite(value.detach()).all()) if value.is_floating_point() else True
    return bool(np.all(np.isfinite(np.asarray(value, dtype=np.float64))))


def judge(call: Callable[[], Any], names: Iterable[str]) -> Any:
    """Run ``call``: a ValueError/TypeError from our code naming one of ``names``, or a finite result.

    Returns the result (``None`` if it raised a clear error).
    """
    names = tuple(names)
    try:
        result = call()
    except (ValueError, TypeError) as error:
        origin = _innermost_file(error)
        assert origin.startswith(OUR_CODE), f"{type(error).__name__} raised inside {origin}: {error}"
        message = str(error)
        assert any(name in message for name in names), f"message names none of {names}: {message!r}"
        assert "\n" not in message.strip(), f"not a one-line message: {message!r}"
        return None
    for number in _numbers(result):
        assert _finite(number), f"non-finite result without an error: {result!r}"
    return result


# ------------------------------------------------------------------------------------------------ strategies
FINITE = st.floats(allow_nan=False, allow_infinity=False, width=64)
EXTREME_FLOATS = st.sampled_from([0.0, -0.0, -1.0, 5e-324, 1e-300, 1e-10, 0.5, 1.0, 2.0, 100.0, 100.0001, 1e10,
                                  1e150, 1e300, 1.7976931348623157e308, math.inf, -math.inf, math.nan])
WRONG_TYPES = st.sampled_from(["1.5", None, True, 1 + 1j, np.complex128(2.0), [1.0], {"a": 1}, object(), b"2"])
NUMBER_LIKE = st.sampled_from([np.float64(1.5), np.float32(0.25), np.int64(3), torch.tensor(2.0),
                               torch.tensor(0.5, dtype=torch.float32), np.array(4.0)])
#: anything a user might pass for a real parameter
ANY_PARAMETER = st.one_of(EXTREME_FLOATS, FINITE, st.integers(-5, 10**6), WRONG_TYPES, NUMBER_LIKE)


def spatial_matrices(dim: int) -> st.SearchStrategy[Any]:
    """Sigma candidates: SPD, non-symmetric, indefinite, singular, complex, NaN, scaled, wrongly shaped, odd types."""
    base = torch.eye(dim, dtype=torch.float64) + 0.3 * (torch.ones(dim, dim, dtype=torch.float64)
                                                        - torch.eye(dim, dtype=torch.float64))

    def variant(kind: str, scale: float) -> Any:
        if kind == "spd":
            return base * scale
        if kind == "asymmetric":
            out = base.clone()
            out[0, -1] += 0.1
            return out
        if kind == "indefinite":
            return base - 2.0 * torch.eye(dim, dtype=torch.float64)
        if kind == "singular":
            return torch.ones(dim, dim, dtype=torch.float64)
        if kind == "complex":
            return base.to(torch.complex128) + 1j * (torch.triu(base, 1) - torch.tril(base, -1))
        if kind == "complex-numpy":
            return base.numpy().astype(np.complex128)
        if kind == "nan":
            out = base.clone()
            out[0, 0] = math.nan
            return out
        if kind == "vector":
            return torch.ones(dim, dtype=torch.float64)
        if kind == "rectangular":
            return torch.ones(dim, dim + 1, dtype=torch.float64)
        if kind == "list":
            return (base * scale).tolist()
        if kind == "int":
            return torch.eye(dim, dtype=torch.int64)
        if kind == "bool":
            return torch.eye(dim, dtype=torch.bool)
        if kind == "empty":
            return torch.zeros(0, 0, dtype=torch.float64)
        return "identity"

    kinds = st.sampled_from(["spd", "asymmetric", "indefinite", "singular", "complex", "complex-numpy", "nan",
                             "vector", "rectangular", "list", "int", "bool", "empty", "string"])
    scales = st.sampled_from([1.0, 1e-300, 1e-150, 1e150, 1e300])
    return st.builds(variant, kinds, scales)


def good_spatial(dim: int) -> st.SearchStrategy[Any]:
    """Valid Sigma: SPD, of any scale, as a tensor, a numpy array or nested lists."""
    base = torch.eye(dim, dtype=torch.float64) + 0.3 * (torch.ones(dim, dim, dtype=torch.float64)
                                                        - torch.eye(dim, dtype=torch.float64))
    return st.builds(lambda scale, kind: {"tensor": base * scale, "numpy": (base * scale).numpy(),
                                          "list": (base * scale).tolist(), "int": torch.eye(dim, dtype=torch.int64)
                                          }[kind],
                     st.sampled_from([1.0, 1e-300, 1e-150, 1e150, 1e300]),
                     st.sampled_from(["tensor", "numpy", "list", "int"]))


KERNELS = [GammaExponential(nu=1.0, ell=2.0), Matern(nu=1.5, ell=2.0), Matern(nu=100.0, ell=1000.0),
           DampedCosine(ell=3.0, period=5.0), kernel_from_name("polynomial", nu=2.0, ell=1.0)]


def small_gp(frames: int = 6, dim: int = 2, kernel: Any = None) -> GaussianProcess:
    spatial = torch.eye(dim, dtype=torch.float64) + 0.2 * torch.ones(dim, dim, dtype=torch.float64)
    return GaussianProcess(kernel or GammaExponential(nu=1.0, ell=2.0), frames, spatial)


GP = small_gp()
MODEL = construct_unrolled(GP, blocks=3, bands=3)


def sample_like(shape_kind: str, scale: float, dtype_kind: str, frames: int = 6, dim: int = 2) -> Any:
    """An ``x`` candidate for a GP with ``frames`` x ``dim`` frames."""
    shapes = {"batch": (3, frames, dim), "single": (frames, dim), "nested": (2, 3, frames, dim),
              "frames": (3, frames + 1, dim), "dim": (3, frames, dim + 1), "flat": (frames * dim,),
              "empty": (0, frames, dim), "scalar": ()}
    x = torch.linspace(-1.0, 1.0, math.prod(shapes[shape_kind]) or 1, dtype=torch.float64)
    x = x[: math.prod(shapes[shape_kind])].reshape(shapes[shape_kind]) * scale
    if dtype_kind == "float32":
        return x.to(torch.float32)
    if dtype_kind == "complex":
        return x.to(torch.complex128) * (1 + 1j)
    if dtype_kind == "int":
        return x.to(torch.int64)
    if dtype_kind == "bool":
        return x > 0
    if dtype_kind == "numpy":
        return x.numpy()
    if dtype_kind == "list":
        return x.tolist()
    if dtype_kind == "nan" and x.numel():
        x = x.clone()
        x.view(-1)[0] = math.nan
    if dtype_kind == "string":
        return "x"
    return x


SAMPLES = st.builds(sample_like, st.sampled_from(["batch", "single", "nested", "frames", "dim", "flat", "empty",
                                                 "scalar"]),
                    st.sampled_from([1.0, 0.0, 1e-300, 1e150, 1e300]),
                    st.sampled_from(["float64", "float32", "complex", "int", "bool", "numpy", "list", "nan",
                                     "string"]))


def diffusion_times(batch: int = 3) -> st.SearchStrategy[Any]:
    """Scalars (extreme, wrong types) and tensors of the right and wrong shapes."""
    tensors = st.builds(lambda shape, value: torch.full(shape, value, dtype=torch.float64),
                        st.sampled_from([(), (batch,), (batch, 1), (1,), (batch + 1,), (1, batch), (0,)]),
                        st.sampled_from([0.5, 1e-300, 1e300, 0.0, -1.0, math.nan]))
    odd = st.sampled_from([torch.tensor([0.5, 1.0, 2.0], dtype=torch.complex64), torch.ones(batch, dtype=torch.bool),
                           torch.tensor([1, 2, 3]), [0.1, 0.2, 0.3], np.array([0.1, 0.2, 0.3]), "0.5", None])
    return st.one_of(EXTREME_FLOATS, WRONG_TYPES, NUMBER_LIKE, tensors, odd)


# ------------------------------------------------------------------------------------------------ kernels
@drawn("kernel_construction")
@given(st.sampled_from(sorted(NAMED_KERNELS)), ANY_PARAMETER, ANY_PARAMETER, ANY_PARAMETER)
def test_kernel_parameters(name, nu, ell, period):
    if name == "damped-cosine":
        kernel = judge(lambda: kernel_from_name(name, ell=ell, period=period), ("ell", "period", "nu"))
    else:
        kernel = judge(lambda: kernel_from_name(name, nu=nu, ell=ell), ("nu", "ell", "period"))
    if kernel is not None:
        values = judge(lambda: kernel(np.arange(8.0)), ())
        assert values[0] == 1.0 and np.all(np.abs(values) <= 1.0 + 1e-12)


LAGS = st.one_of(
    st.lists(st.floats(0.0, 1e308), min_size=1, max_size=6).map(np.array),
    st.lists(st.floats(-1e308, 1e308), min_size=1, max_size=6).map(lambda v: torch.tensor(v, dtype=torch.float64)),
    st.sampled_from([np.array([1e-320, 1e-300, 1e-160, 1e-8, 3.0, 1e4, 1e9, 1e300]), np.array([[0.0, 1.0]]),
                     np.array([1.0 + 1j]), torch.tensor([1.0, 2.0], dtype=torch.complex64), np.array(["1"]),
                     np.array([math.nan]), np.array([math.inf]), [0, 1, 2], 3.0, "lags", None, [[1.0], [2.0, 3.0]],
                     torch.tensor([0, 1, 2]), np.array([True, False])]),
)
PARAMETER_GRID = st.sampled_from([1e-300, 1e-12, 0.01, 0.5, 1.0, 1.5, 2.0, 2.5, 37.3, 99.99, 100.0])
ELL_GRID = st.sampled_from([5e-324, 1e-300, 1e-10, 0.3, 1.0, 1e3, 1e150, 1e300, 1.7e308])


@drawn("kernel_evaluation")
@given(st.sampled_from(["matern", "gamma-exponential", "polynomial", "logarithmic", "damped-cosine"]),
       PARAMETER_GRID, ELL_GRID, LAGS)
def test_kernel_values_at_any_lag(name, nu, ell, lags):
    """Every family, over its whole documented range, at any lag: finite, in [-1, 1], 1 at lag 0."""
    if name == "damped-cosine":
        kernel = DampedCosine(ell=ell, period=nu)
    elif name == "gamma-exponential":
        kernel = GammaExponential(nu=min(nu, 2.0), ell=ell)
    else:
        kernel = kernel_from_name(name, nu=nu, ell=ell)
    values = judge(lambda: kernel(lags), ("lags",))
    if values is not None:
        array = np.asarray(values, dtype=np.float64)
        assert np.all(np.abs(array) <= 1.0 + 1e-12)
        lag_array = np.abs(np.asarray(lags, dtype=np.float64))
        assert np.all(array[lag_array == 0] == 1.0)


# ------------------------------------------------------------------------------------------------ one bad argument
@st.composite
def one_bad(draw: st.DrawFn, good: dict[str, st.SearchStrategy[Any]], bad: dict[str, st.SearchStrategy[Any]]
            ) -> tuple[dict[str, Any], str | None]:
    """Good values for every argument, then (unless all stay good, about one case in three) a bad one for a
    single argument, named in the second entry: the error, if any, must name that argument."""
    names = sorted(bad)
    choice = draw(st.sampled_from([None] * max(2, len(names) // 2) + names))
    values = {name: draw(strategy) for name, strategy in good.items()}
    if choice is not None:
        values[choice] = draw(bad[choice])
    return values, choice


def expected_names(choice: str | None, everything: Iterable[str], aliases: dict[str, tuple[str, ...]]
                   ) -> tuple[str, ...]:
    """The names an error may give: the bad argument's (and its aliases), or any when all were good."""
    return tuple(everything) if choice is None else (choice,) + aliases.get(choice, ())


# ------------------------------------------------------------------------------------------------ the GP
TIMES = {"unit": lambda h: np.arange(h, dtype=float), "warped": lambda h: np.arange(h) ** 1.5,
         "decreasing": lambda h: -np.arange(h, dtype=float), "complex": lambda h: np.arange(h) * (1 + 1j),
         "short": lambda h: np.arange(h - 1, dtype=float), "nan": lambda h: np.full(h, math.nan),
         "string": lambda h: "0 1 2"}


@drawn("gp_construction")
@given(st.integers(1, 4).flatmap(lambda dim: one_bad(
    good={"kernel": st.sampled_from(KERNELS), "frames": st.integers(1, 12),
          "spatial": good_spatial(dim),
          "times": st.sampled_from([None, "unit", "warped"])},
    bad={"kernel": st.sampled_from(["kernel", None, Matern, 3.0]),
         "frames": st.sampled_from([-3, 0, 10**6, 10**9, 2.0, "8", None, True]),
         "spatial": spatial_matrices(dim), "times": st.sampled_from(["decreasing", "complex", "short", "nan",
                                                                     "string"])})))
def test_gaussian_process_construction(arguments):
    values, choice = arguments

    def build() -> Any:
        frames = values["frames"]
        count = frames if type(frames) is int and 0 < frames < 100 else 4
        times = None if values["times"] is None else TIMES[values["times"]](count)
        gp = GaussianProcess(values["kernel"], frames, values["spatial"], times=times).validate()
        return gp.temporal, gp.sample(2, generator=torch.Generator().manual_seed(0))

    aliases = {"spatial": ("Sigma",), "frames": ("memory",)}
    judge(build, expected_names(choice, ("kernel", "frames", "spatial", "times", "temporal covariance"), aliases))


def good_times(shape: tuple[int, ...]) -> st.SearchStrategy[Any]:
    """Diffusion times valid for samples of batch shape ``shape``: a scalar of any kind, or exactly ``shape``."""
    scalars = st.sampled_from([0.5, 1e-3, 1e-300, 7.0, 1e300, 2, np.float64(0.5), torch.tensor(0.25),
                               np.array(1.5)])
    per_sample = st.sampled_from([0.1, 1.0, 50.0]).map(lambda v: torch.full(shape, v, dtype=torch.float64))
    return st.one_of(scalars, per_sample) if shape else scalars


def bad_times(shape: tuple[int, ...]) -> st.SearchStrategy[Any]:
    wrong_shapes = [s for s in [shape + (1,), (1,), (5,), (1,) + shape, (0,)] if s != shape]
    return st.one_of(st.sampled_from([0.0, -1.0, math.nan, math.inf, -math.inf, "0.5", None, True, 1 + 1j,
                                      np.complex128(1.0), [0.1, "a"], object()]),
                     st.sampled_from(wrong_shapes).map(lambda s: torch.full(s, 0.5, dtype=torch.float64)),
                     st.just(torch.full(shape or (1,), 0.5, dtype=torch.complex64)),
                     st.just(torch.ones(shape or (1,), dtype=torch.bool)),
                     st.just(torch.full(shape, -2.0, dtype=torch.float64)))


GOOD_SAMPLES = st.builds(sample_like, st.sampled_from(["batch", "single", "nested"]),
                         st.sampled_from([1.0, 0.0, 1e-300, 1e30]),
                         st.sampled_from(["float64", "float32", "int", "numpy", "list"]))
BAD_SAMPLES = st.one_of(
    st.builds(sample_like, st.sampled_from(["frames", "dim", "flat", "scalar"]), st.just(1.0),
              st.sampled_from(["float64", "numpy"])),
    st.builds(sample_like, st.sampled_from(["batch", "single"]), st.sampled_from([1.0, 1e300]),
              st.sampled_from(["complex", "bool", "nan", "string"])),
    st.builds(sample_like, st.just("batch"), st.just(1e300), st.just("float64")),
)


def _batch_shape(x: Any) -> tuple[int, ...]:
    return tuple(np.shape(x))[:-2]


@drawn("score_inputs")
@given(st.sampled_from(["score", "noised", "precision_apply", "log_density", "score_dense"]), st.data())
def test_score_and_noised_inputs(method, data):
    """score, noised and the others accept exactly the same inputs: a scalar time or one per sample."""
    choice = data.draw(st.sampled_from([None, "x", "diffusion_time"]))
    x = data.draw(BAD_SAMPLES if choice == "x" else GOOD_SAMPLES)
    shape = _batch_shape(x) if choice != "x" else (3,)
    diffusion_time = data.draw(bad_times(shape) if choice == "diffusion_time" else good_times(shape))
    gp = small_gp()

    def call(name: str) -> Any:
        if name == "noised":
            return gp.noised(x, diffusion_time, generator=torch.Generator().manual_seed(0))
        return getattr(gp, name)(x, diffusion_time)

    names = expected_names(choice, ("x", "diffusion_time"), {"x": ("x0",)})
    result = judge(lambda: call(method), names)
    if method in ("score", "noised"):  # the two agree on what they accept
        other = judge(lambda: call("noised" if method == "score" else "score"), names)
        assert (result is None) == (other is None)


# ------------------------------------------------------------------------------------------------ diffusion
@drawn("diffusion_helpers")
@given(st.sampled_from(["alpha", "sigma", "sigma2", "sample_diffusion_times", "time_grid", "noise", "dsm_loss"]),
       st.data())
def test_diffusion_helpers(helper, data):
    generator = torch.Generator().manual_seed(0)
    x0 = torch.ones(3, 6, 2, dtype=torch.float64)
    if helper in ("alpha", "sigma", "sigma2"):
        time = data.draw(st.one_of(good_times((3,)), bad_times((3,)), st.just(0.0), st.just(torch.zeros(3))))
        result = judge(lambda: getattr(diffusion, helper)(time), ("diffusion_time",))
        if result is not None:
            values = torch.as_tensor(result, dtype=torch.float64)
            assert bool(((values >= 0) & (values <= 1)).all())  # t >= 0: alpha <= 1 and 0 <= sigma^2 <= 1
        return
    if helper in ("noise", "dsm_loss"):
        choice = data.draw(st.sampled_from([None, "diffusion_time"]))
        time = data.draw(bad_times((3,)) if choice else good_times((3,)))
        call = (lambda: diffusion.noise(x0, time, generator=generator)) if helper == "noise" else (
            lambda: diffusion.dsm_loss(lambda x, t: -x, x0, diffusion_time=time, generator=generator))
        judge(call, expected_names(choice, ("diffusion_time",), {}))
        return
    values, choice = data.draw(one_bad(
        good={"low": st.sampled_from([1e-3, 1e-300, 0.5]), "high": st.sampled_from([10.0, 1e300, 1.0]),
              "dtype": st.sampled_from([torch.float64, torch.float32]), "count": st.integers(1, 50)},
        bad={"low": ANY_PARAMETER, "high": ANY_PARAMETER,
             "dtype": st.sampled_from([torch.int64, torch.bool, torch.complex64, "float64", None]),
             "count": st.sampled_from([0, -1, 2.0, "3", None, 10**12])}))
    if helper == "sample_diffusion_times":
        result = judge(lambda: diffusion.sample_diffusion_times(values["count"], t_min=values["low"],
                                                                t_max=values["high"], generator=generator,
                                                                dtype=values["dtype"]),
                       expected_names(choice, ("t_min", "t_max", "count", "dtype"),
                                      {"low": ("t_min", "t_max"), "high": ("t_max",), "count": ("memory",)}))
        if result is not None:
            assert result.dtype.is_floating_point and bool((result > 0).all())
    else:
        judge(lambda: diffusion.time_grid(values["high"], values["low"], values["count"]),
              expected_names(choice, ("t_start", "t0", "steps"), {"low": ("t0",), "high": ("t_start", "t0"),
                                                                  "count": ("steps", "memory"), "dtype": ("t0",)}))


@drawn("samplers")
@given(st.sampled_from(["sample_reverse_sde", "sample_probability_flow"]), one_bad(
    good={"shape": st.sampled_from([(2, 6, 2), [1, 4, 3]]), "score": st.just("good"), "x_start": st.just(None)},
    bad={"shape": st.sampled_from([(0, 6, 2), (2, 6), "shape", (2.0, 6, 2), (2, -1, 2)]),
         "score": st.sampled_from(["nan", "shape", "huge", "none", "not callable"]),
         "x_start": st.sampled_from(["complex", "wrong shape", "nan"])}))
def test_samplers(sampler, arguments):
    values, choice = arguments
    scores = {"good": lambda x, t: -x, "nan": lambda x, t: x * math.nan, "shape": lambda x, t: x[..., :1],
              "huge": lambda x, t: x * 1e300, "none": lambda x, t: None, "not callable": 3.0}
    shape = values["shape"]
    starts = {None: None, "complex": torch.zeros(2, 6, 2, dtype=torch.complex64), "wrong shape": torch.zeros(3, 6, 2),
              "nan": torch.full((2, 6, 2), math.nan)}
    function = getattr(diffusion, sampler)
    judge(lambda: function(scores[values["score"]], shape, steps=4, generator=torch.Generator().manual_seed(0),
                           x_start=starts[values["x_start"]]),
          expected_names(choice, ("shape", "score", "x_start"), {"score": (sampler,)}))


# ------------------------------------------------------------------------------------------------ construction
WARPED_GP = GaussianProcess(Matern(), 5, torch.eye(2, dtype=torch.float64), times=np.arange(5) ** 2.0)


@drawn("construction")
@given(one_bad(
    good={"blocks": st.integers(1, 6), "bands": st.integers(0, 5), "mode": st.sampled_from(["exact", "paper"]),
          "taper": st.sampled_from([None, "triangular"]), "steps": st.sampled_from(["gd", "chebyshev"]),
          "slope_margin": st.sampled_from([1.0, 2.5, 1e6, np.float64(3.0)]),
          "paper_range": st.sampled_from([16.0, 1e3, 1e6]), "paper_knots": st.sampled_from([3, 9, 33]),
          "dtype": st.sampled_from([torch.float64, torch.float32]), "gp": st.just(GP)},
    bad={"blocks": st.sampled_from([-1, 0, 10**7, 2.0, "3", None]),
         "bands": st.sampled_from([-1, 6, 100, 2.5, "2", None]), "mode": st.sampled_from(["softmax", None, 3]),
         "taper": st.sampled_from(["cosine", 3]), "steps": st.sampled_from(["adam", None]),
         "slope_margin": st.sampled_from([0.5, 1e7, 1e300, math.nan, "1", 1 + 0j, True]),
         "paper_range": st.sampled_from([1e7, 1e300, -1.0, math.inf, 0.0, "16"]),
         "paper_knots": st.sampled_from([2, 10**9, 9.0]),
         "dtype": st.sampled_from([torch.int64, "float64", None]),
         "gp": st.sampled_from(["gp", (torch.ones(3, 3), torch.eye(2)), (torch.ones(4), torch.ones(2, 3)),
                                small_gp(frames=1), WARPED_GP])}))
def test_construct_unrolled_arguments(arguments):
    values, choice = arguments
    gp = values.pop("gp")

    def build() -> Any:
        model = construct_unrolled(gp, **values)
        x = GP.sample(2, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            return model(x.to(model.dtype), 0.5)

    aliases = {"gp": ("temporal", "spatial", "frames", "Toeplitz", "bands"), "bands": ("Gamma_J",),
               "paper_knots": ("memory",), "blocks": ("memory",)}
    judge(build, expected_names(choice, list(values) + ["Gamma", "bands", "looped"], aliases))


@drawn("transformer")
@given(st.data(), one_bad(
    good={"qk_scale": st.sampled_from([1.0, -2.0, 0.0, 1e3]), "seed": st.sampled_from([0, 3, 2**63 - 1]),
          "window": st.sampled_from([None, 0, 2]), "dtype": st.sampled_from([None, "float64", "float32"]),
          "x": GOOD_SAMPLES},
    bad={"qk_scale": st.sampled_from([1e300, math.nan, math.inf, "1", None, 1j]),
         "seed": st.sampled_from([-1, 2**63, 1.5, "0"]), "window": st.sampled_from([-1, 2.5]),
         "dtype": st.sampled_from([torch.int32, "int8"]), "x": BAD_SAMPLES,
         "diffusion_time": st.just("bad")}))
def test_transformer_arguments_and_inputs(data, arguments):
    values, choice = arguments
    x = values.pop("x")
    shape = _batch_shape(x) if choice != "x" else (3,)
    if len(shape) > 1:  # the Transformer takes (batch, H, d) or (H, d)
        x, shape = x[0], shape[1:]
    diffusion_time = data.draw(bad_times(shape) if choice == "diffusion_time" else good_times(shape))
    values.pop("diffusion_time", None)

    def run() -> Any:
        model = Transformer(dim=2, width=8, blocks=2, heads=2, **values)
        with torch.no_grad():
            return model(x, diffusion_time)

    judge(run, expected_names(choice, list(values) + ["x", "diffusion_time", "Transformer.forward"],
                              {"qk_scale": ("Transformer.forward",), "x": ("Transformer.forward",)}))


# ------------------------------------------------------------------------------------------------ verify
OTHER_GPS = [small_gp(kernel=Matern(nu=1.5, ell=2.0)), small_gp(kernel=GammaExponential(nu=1.0, ell=3.0)),
             small_gp(frames=7), small_gp(dim=3), GaussianProcess(GammaExponential(nu=1.0, ell=2.0), 6, torch.eye(2))]
VERIFY_X = {None: None, "ones": torch.ones(2, 6, 2), "single": torch.linspace(-1, 1, 12).reshape(6, 2),
            "tiny": torch.ones(2, 6, 2) * 1e-300, "zeros": torch.zeros(2, 6, 2), "huge": torch.ones(2, 6, 2) * 1e300,
            "complex": torch.ones(2, 6, 2, dtype=torch.complex128), "wrong shape": torch.ones(2, 5, 2),
            "nan": torch.full((2, 6, 2), math.nan), "batched twice": torch.ones(1, 2, 6, 2)}


@drawn("verify_arguments")
@given(one_bad(
    good={"gp": st.sampled_from([GP, small_gp()]), "model": st.just(MODEL),
          "diffusion_time": st.sampled_from([0.5, 1e-3, 10.0, np.float64(0.5), torch.tensor(0.5)]),
          "x": st.sampled_from([None, "ones", "single", "tiny"]), "batch": st.sampled_from([1, 2, 5]),
          "bands": st.sampled_from([None, 3]), "taper": st.just(None), "attach_bounds": st.sampled_from([True, False]),
          "generator": st.sampled_from([None, torch.Generator().manual_seed(1)])},
    bad={"gp": st.sampled_from(OTHER_GPS + ["gp"]),
         "model": st.sampled_from(["model", Transformer(dim=3, width=8, blocks=1, heads=1)]),
         "diffusion_time": bad_times(()), "x": st.sampled_from(["zeros", "huge", "complex", "wrong shape", "nan",
                                                                "batched twice"]),
         "batch": st.sampled_from([0, -1, 2.0, "2"]), "bands": st.sampled_from([2, 9, -1]),
         "taper": st.sampled_from(["triangular", "nope"]), "attach_bounds": st.sampled_from(["yes", 1]),
         "generator": st.sampled_from([7, "g"])}))
def test_verify_arguments(arguments):
    values, choice = arguments
    if choice == "batch":
        values["x"] = None  # batch only matters when verify draws x
    values["x"] = VERIFY_X[values["x"]]
    gp, model, diffusion_time = values.pop("gp"), values.pop("model"), values.pop("diffusion_time")
    aliases = {"gp": ("built for", "dimension"), "model": ("dimension",), "x": ("||C_t^{-1} x||", "precision_apply")}
    report = judge(lambda: verify(gp, model, diffusion_time, **values),
                   expected_names(choice, ("diffusion_time", "x"), aliases))
    if report is not None:
        assert not report.failures and report.parts["net"].measured < 1e-9


# ------------------------------------------------------------------------------------------------ configs, theory
TRAIN_FIELDS = [f.name for f in dataclasses.fields(TrainConfig)]
COMPARE_FIELDS = [f.name for f in dataclasses.fields(CompareConfig)]
FIELD_VALUES = st.one_of(ANY_PARAMETER, st.sampled_from(["cpu", "cosine", "dit", (), (1.0,), ("H",), "H", -10**9]))


@drawn("configs")
@given(st.sampled_from(["train"] * 2 + ["compare"] * 3), st.data())
def test_config_fields(which, data):
    """Any value in any field: validate() passes or names the field (or the field it is checked against)."""
    fields = TRAIN_FIELDS if which == "train" else COMPARE_FIELDS
    name = data.draw(st.sampled_from(fields))
    value = data.draw(FIELD_VALUES)
    cls = TrainConfig if which == "train" else CompareConfig
    partners = {"t_max": "t_min", "t_min": "t_max", "t0": "t_start", "t_start": "t0", "dit_heads": "dit_width",
                "weight_decay": "learning_rate", "learning_rate": "weight_decay", "kernel": "control_kernel",
                "control_kernel": "kernel", "frames": "bands", "learning_rates": "learning_rate"}
    judge(lambda: cls(**{name: value}).validate(), (name, partners.get(name, name), "nu", "diffusion times"))


@drawn("theory")
@given(st.one_of(ANY_PARAMETER, st.sampled_from([None, -1e-300])), ANY_PARAMETER,
       st.sampled_from(["exact", "paper", "softmax", "foo", None, 3]))
def test_theory_check_and_expressions(bound, measured, mode):
    result = judge(lambda: theory.check(bound, measured), ("bound", "measured"))
    if result is not None:
        assert result.holds == (result.measured <= result.bound)
    judge(lambda: (theory.heads_expression(mode), theory.tent_slope_expression(mode)), ("mode",))


# one bad value per field: validate() must refuse each (so a field added without a check fails here)
BAD_TRAIN_VALUES = {
    "steps": 0, "batch_size": 2.5, "learning_rate": 1e300, "warmup": -1, "final_lr_fraction": 2.0,
    "weight_decay": math.nan, "grad_clip": -1.0, "t_min": 0.0, "t_max": math.inf, "seed": -1,
    "checkpoint_every": 0, "device": "gpu", "progress": "yes", "schedule": "linear", "eval_every": 0,
    "patience": 0, "min_delta": 1.0, "validation_repeats": 0, "validation_seed": "0", "plateau_factor": 1.0,
    "plateau_patience": 0,
}
BAD_COMPARE_VALUES = {
    "kernel": "gauss", "control_kernel": "gamma-exponential", "nu": 3.0, "ell": 0.0, "period": -6.0, "frames": 1,
    "dim": 0, "spatial_correlation": 1.0, "spatial": "diagonal", "spatial_seed": -1,
    "spatial_condition": 0.5, "train_size": 0, "validation_size": 0, "heldout": 1, "eval_times": (),
    "response_time": 0.0, "map_time": math.nan, "probe_time": "0.5", "steps": 0, "batch_size": 0,
    "learning_rate": 2.0, "schedule": "step", "warmup": -1, "eval_every": 0, "patience": 0, "plateau_patience": 0,
    "seed": -1, "device": "tpu", "dit_width": 42, "dit_blocks": 0, "dit_heads": 0, "unet_channels": 0,
    "unet_levels": 7, "relu_blocks": 0, "relu_bands": -1, "relu_width": 0, "alignment_seeds": 1,
    "alignment_models": ("unet",), "sweep_model": "mlp", "sweep_sizes": (16, 16, 32), "sweep_seeds": 1,
    "floor_seeds": 1, "learning_rates": (), "architecture_seeds": 1, "generated_samples": -1, "lengths": (1,),
    "warp": 0.0, "init_seeds": -1, "construct_blocks": 0, "bands": 16, "sampler_steps": 0, "t_start": math.inf,
    "t0": 8.0, "sweeps": "H", "sweep_steps": 0, "video": 1, "video_size": 1, "video_steps": 0, "workers": -1,
    "scheduler": "", "figures": "no", "progress": None,
}


@pytest.mark.parametrize(("cls", "bad"), [(TrainConfig, BAD_TRAIN_VALUES), (CompareConfig, BAD_COMPARE_VALUES)],
                         ids=["TrainConfig", "CompareConfig"])
def test_every_config_field_is_validated(cls, bad):
    fields = [f.name for f in dataclasses.fields(cls)]
    assert sorted(bad) == sorted(fields), "a config field has no bad value here: add one (and its check)"
    cls().validate()
    for name, value in bad.items():
        with pytest.raises((ValueError, TypeError)) as caught:
            cls(**{name: value}).validate()
        assert _innermost_file(caught.value).startswith(OUR_CODE)
        assert name in str(caught.value) or (name, str(caught.value)) in {("control_kernel", "")}, \
            f"{cls.__name__}.{name}={value!r}: {caught.value}"
