"""Every initializer of the registry against its framework: formulas, samples, parity.

For each registry entry the test computes the expected distribution here, from the
formulas of the reference (fans from the shape, gains, the 0.8796... truncation
correction), independently of ``core``; then checks

* that the resolved plan (expected mean/variance, bound or std) equals that formula;
* that generated values agree with it: sample mean within 5 standard errors, sample
  variance within 5 standard errors computed from the distribution's 4th central moment,
  and bounds exact (every value inside, the extremes close to the bounds);
* parity with the framework the name comes from: ``torch.nn.init.<name>_`` or
  ``keras.initializers.<Class>`` (KERAS_BACKEND=torch) on a tensor of the same shape, by a
  two-sample Kolmogorov-Smirnov test. All samples are seeded, so the outcome is fixed;
  alpha = 1e-6 per comparison, with at most 40 comparisons in this file, bounds the
  chance that a correct implementation fails for an unlucky seed by 4e-5 (Bonferroni).
  ``test_ks_detects_a_ten_percent_std_error`` shows that, at the sample size used
  (50,000 a side), a 10 % error in the standard deviation is caught: enough to catch a
  wrong fan, gain or truncation rule (the 0.8796 correction alone is 14 %). Smaller
  errors are the business of the formula checks, whose 5-sigma variance bound is about
  3 % of the variance (1.6 % of the std) at this n.

Deterministic fills (zeros, ones, constant, eye, identity, dirac) are compared exactly,
orthogonal by its orthogonality property in each framework's orientation, sparse by the
exact count of zeros per column.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pytest
import scipy.stats
import torch

os.environ["KERAS_BACKEND"] = "torch"  # chosen before keras is imported
import keras
from engine_helpers import one_tensor, spec_of, tensor_layer
from weightinit.core import REGISTRY, Spec, build_plan
from weightinit.core.initializers import INITIALIZER_NAMES, ResolvedInit

SEED = 20240611
ALPHA = 1e-6  # per KS comparison; see the module docstring for the family-wise bound
SIGMAS = 5.0  # 5-sigma bounds: two-sided false alarm 5.7e-7 per check
TRUNCATION_STD = float(scipy.stats.truncnorm(-2.0, 2.0).std())  # std of N(0,1) cut at +-2


def torch_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) for torch's (out, in, *k) layout, written out here."""
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def keras_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) for Keras' (in, out) / (*k, in, out) layout."""
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


# ----------------------------------------------------------- expected distributions ----


@dataclass(frozen=True)
class Expected:
    """A distribution as scipy knows it, with the bounds its samples must respect."""

    dist: Any
    low: float = -math.inf
    high: float = math.inf
    high_inclusive: bool = True
    std: float | None = None  # the derived std/bound the plan must report, if any
    bound: float | None = None

    @property
    def mean(self) -> float:
        return float(self.dist.mean())

    @property
    def variance(self) -> float:
        return float(self.dist.var())

    @property
    def fourth_central_moment(self) -> float:
        excess_kurtosis = float(self.dist.stats(moments="k"))
        return (excess_kurtosis + 3.0) * self.variance**2


def uniform(low: float, high: float, bound: float | None = None) -> Expected:
    """U[low, high): the high end excluded (in float64)."""
    return Expected(scipy.stats.uniform(low, high - low), low, high, False, bound=bound)


def normal(mean: float, std: float) -> Expected:
    return Expected(scipy.stats.norm(mean, std), std=std)


def truncated(mean: float, std: float, a: float, b: float) -> Expected:
    """N(mean, std^2) restricted to the absolute bounds [a, b]."""
    dist = scipy.stats.truncnorm((a - mean) / std, (b - mean) / std, loc=mean, scale=std)
    return Expected(dist, a, b, True, std=std)


def keras_truncated(variance: float) -> Expected:
    """Keras 3: std sqrt(variance) / 0.8796..., truncated at +-2 std."""
    std = math.sqrt(variance) / TRUNCATION_STD
    return truncated(0.0, std, -2.0 * std, 2.0 * std)


def symmetric_uniform(bound: float) -> Expected:
    return uniform(-bound, bound, bound)


def torch_gain(nonlinearity: str, slope: float = 0.0) -> float:
    """torch.nn.init.calculate_gain, from its documented table."""
    if nonlinearity == "leaky_relu":
        return math.sqrt(2.0 / (1.0 + slope**2))
    return {"linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0),
            "selu": 3.0 / 4.0}[nonlinearity]


# ------------------------------------------------------------------------ the cases ----

DENSE = (250, 200)  # torch (out, in) or keras (in, out); 50,000 elements
CONV_TORCH = (64, 32, 5, 5)  # (out, in, kh, kw): fan_in 800, fan_out 1600
CONV_KERAS = (3, 3, 40, 60)  # (kh, kw, in, out): fan_in 360, fan_out 540


@dataclass(frozen=True)
class Case:
    """One initializer on one tensor, with its expected distribution and its framework."""

    id: str
    init: Any
    shape: tuple[int, ...]
    convention: str
    expected: Expected
    framework: str | None = None  # "torch" or "keras": the parity sampler in FRAMEWORK
    framework_shape: tuple[int, ...] | None = None

    @property
    def name(self) -> str:
        return self.init if isinstance(self.init, str) else self.init["name"]


def _cases() -> list[Case]:
    t_in, t_out = torch_fans(DENSE)  # 200, 250
    k_in, k_out = keras_fans(DENSE)  # 250, 200
    c_in, c_out = torch_fans(CONV_TORCH)  # 800, 1600
    kc_in, kc_out = keras_fans(CONV_KERAS)  # 360, 540
    return [
        Case("uniform", {"name": "uniform", "low": -0.3, "high": 0.7}, DENSE, "torch",
             uniform(-0.3, 0.7), "torch"),
        Case("normal", {"name": "normal", "mean": 0.1, "std": 0.02}, DENSE, "torch",
             normal(0.1, 0.02), "torch"),
        Case("truncated_normal_absolute",
             {"name": "truncated_normal", "mean": 0.3, "std": 0.7, "a": -0.5, "b": 1.5},
             DENSE, "torch", truncated(0.3, 0.7, -0.5, 1.5), "torch"),
        # Far tails: the plan's moments need Phi's mirrored tail to keep their digits.
        Case("truncated_normal_upper_tail",
             {"name": "truncated_normal", "mean": 0.0, "std": 1.0, "a": 3.0, "b": 4.0},
             DENSE, "torch", truncated(0.0, 1.0, 3.0, 4.0), "torch"),
        Case("truncated_normal_lower_tail",
             {"name": "truncated_normal", "mean": 1.0, "std": 2.0, "a": -10.0, "b": -9.0},
             DENSE, "torch", truncated(1.0, 2.0, -10.0, -9.0)),
        Case("truncated_normal_default_bounds",
             {"name": "truncated_normal", "mean": 0.2, "std": 0.05}, DENSE, "keras",
             truncated(0.2, 0.05, 0.1, 0.3), "keras"),
        # torch's trunc_normal_: defaults N(0, 1) on the absolute [-2, 2].
        Case("trunc_normal_defaults", "trunc_normal", DENSE, "torch",
             truncated(0.0, 1.0, -2.0, 2.0), "torch"),
        Case("trunc_normal_absolute", {"name": "trunc_normal", "mean": 0.5, "std": 2.0,
                                       "a": -1.0, "b": 3.0},
             CONV_TORCH, "torch", truncated(0.5, 2.0, -1.0, 3.0), "torch"),
        # The ViT/timm call trunc_normal_(std=0.02): bounds at +-100 std, so in effect an
        # untruncated N(0, 0.02^2) (the bounds are never approached: checked as a normal).
        Case("trunc_normal_small_std", {"name": "trunc_normal", "std": 0.02}, DENSE, "torch",
             replace(truncated(0.0, 0.02, -2.0, 2.0), low=-math.inf, high=math.inf), "torch"),
        Case("random_uniform", "random_uniform", DENSE, "keras", uniform(-0.05, 0.05), "keras"),
        Case("random_normal", {"name": "random_normal", "mean": -0.1, "stddev": 0.3}, DENSE,
             "keras", normal(-0.1, 0.3), "keras"),
        Case("variance_scaling_uniform_fan_out",
             {"name": "variance_scaling", "scale": 2.0, "mode": "fan_out",
              "distribution": "uniform"},
             CONV_KERAS, "keras", symmetric_uniform(math.sqrt(3.0 * 2.0 / kc_out)), "keras"),
        Case("variance_scaling_truncated_fan_avg",
             {"name": "variance_scaling", "scale": 0.5, "mode": "fan_avg",
              "distribution": "truncated_normal"},
             CONV_KERAS, "keras", keras_truncated(0.5 / ((kc_in + kc_out) / 2.0)), "keras"),
        Case("variance_scaling_untruncated_fan_in",
             {"name": "variance_scaling", "scale": 1.5, "mode": "fan_in",
              "distribution": "untruncated_normal"},
             CONV_KERAS, "keras", normal(0.0, math.sqrt(1.5 / kc_in)), "keras"),
        Case("variance_scaling_normal_means_truncated",
             {"name": "variance_scaling", "distribution": "normal"}, DENSE, "keras",
             keras_truncated(1.0 / k_in), "keras"),
        Case("variance_scaling_fan_geo_avg",  # not in Keras 3.15: formula and samples only
             {"name": "variance_scaling", "mode": "fan_geo_avg", "distribution": "uniform"},
             CONV_KERAS, "keras", symmetric_uniform(math.sqrt(3.0 / math.sqrt(kc_in * kc_out)))),
        Case("glorot_uniform", "glorot_uniform", DENSE, "keras",
             symmetric_uniform(math.sqrt(6.0 / (k_in + k_out))), "keras"),
        Case("glorot_normal", "glorot_normal", CONV_KERAS, "keras",
             keras_truncated(2.0 / (kc_in + kc_out)), "keras"),
        Case("he_uniform", "he_uniform", CONV_KERAS, "keras",
             symmetric_uniform(math.sqrt(6.0 / kc_in)), "keras"),
        Case("he_normal_torch_layout", "he_normal", CONV_TORCH, "torch",
             keras_truncated(2.0 / c_in), "keras", framework_shape=(5, 5, 32, 64)),
        Case("lecun_uniform", "lecun_uniform", DENSE, "keras",
             symmetric_uniform(math.sqrt(3.0 / k_in)), "keras"),
        Case("lecun_normal", "lecun_normal", DENSE, "keras", keras_truncated(1.0 / k_in),
             "keras"),
        Case("xavier_uniform_gain", {"name": "xavier_uniform", "gain": 2.0}, DENSE, "torch",
             symmetric_uniform(2.0 * math.sqrt(6.0 / (t_in + t_out))), "torch"),
        Case("xavier_normal_conv", {"name": "xavier_normal", "gain": 0.5}, CONV_TORCH, "torch",
             normal(0.0, 0.5 * math.sqrt(2.0 / (c_in + c_out))), "torch"),
        Case("kaiming_uniform_defaults", "kaiming_uniform", DENSE, "torch",
             symmetric_uniform(math.sqrt(3.0) * torch_gain("leaky_relu") / math.sqrt(t_in)),
             "torch"),
        Case("kaiming_uniform_leaky_fan_out",
             {"name": "kaiming_uniform", "a": 0.2, "mode": "fan_out",
              "nonlinearity": "leaky_relu"},
             CONV_TORCH, "torch",
             symmetric_uniform(math.sqrt(3.0) * torch_gain("leaky_relu", 0.2) / math.sqrt(c_out)),
             "torch"),
        Case("kaiming_normal_tanh", {"name": "kaiming_normal", "nonlinearity": "tanh"}, DENSE,
             "torch", normal(0.0, torch_gain("tanh") / math.sqrt(t_in)), "torch"),
        Case("kaiming_normal_selu_fan_out",
             {"name": "kaiming_normal", "mode": "fan_out", "nonlinearity": "selu"}, DENSE,
             "torch", normal(0.0, torch_gain("selu") / math.sqrt(t_out)), "torch"),
        Case("kaiming_normal_relu_conv", {"name": "kaiming_normal", "nonlinearity": "relu"},
             CONV_TORCH, "torch", normal(0.0, torch_gain("relu") / math.sqrt(c_in)), "torch"),
        Case("kaiming_normal_sigmoid", {"name": "kaiming_normal", "nonlinearity": "sigmoid"},
             DENSE, "torch", normal(0.0, 1.0 / math.sqrt(t_in))),
        Case("torch_default_linear", "torch_default", DENSE, "torch",
             symmetric_uniform(1.0 / math.sqrt(t_in)), "torch"),
        Case("torch_default_conv", "torch_default", CONV_TORCH, "torch",
             symmetric_uniform(1.0 / math.sqrt(c_in)), "torch"),
    ]


CASES = _cases()

TORCH_INIT = torch.nn.init
FRAMEWORK: dict[str, Any] = {
    # torch: fn(tensor, generator) fills the tensor as the framework does.
    "uniform": lambda t, g: TORCH_INIT.uniform_(t, -0.3, 0.7, generator=g),
    "normal": lambda t, g: TORCH_INIT.normal_(t, 0.1, 0.02, generator=g),
    "truncated_normal_absolute": lambda t, g: TORCH_INIT.trunc_normal_(
        t, 0.3, 0.7, -0.5, 1.5, generator=g),
    "truncated_normal_upper_tail": lambda t, g: TORCH_INIT.trunc_normal_(
        t, 0.0, 1.0, 3.0, 4.0, generator=g),
    "trunc_normal_defaults": lambda t, g: TORCH_INIT.trunc_normal_(t, generator=g),
    "trunc_normal_absolute": lambda t, g: TORCH_INIT.trunc_normal_(
        t, mean=0.5, std=2.0, a=-1.0, b=3.0, generator=g),
    "trunc_normal_small_std": lambda t, g: TORCH_INIT.trunc_normal_(t, std=0.02, generator=g),
    "xavier_uniform_gain": lambda t, g: TORCH_INIT.xavier_uniform_(t, 2.0, generator=g),
    "xavier_normal_conv": lambda t, g: TORCH_INIT.xavier_normal_(t, 0.5, generator=g),
    "kaiming_uniform_defaults": lambda t, g: TORCH_INIT.kaiming_uniform_(t, generator=g),
    "kaiming_uniform_leaky_fan_out": lambda t, g: TORCH_INIT.kaiming_uniform_(
        t, a=0.2, mode="fan_out", nonlinearity="leaky_relu", generator=g),
    "kaiming_normal_tanh": lambda t, g: TORCH_INIT.kaiming_normal_(
        t, nonlinearity="tanh", generator=g),
    "kaiming_normal_selu_fan_out": lambda t, g: TORCH_INIT.kaiming_normal_(
        t, mode="fan_out", nonlinearity="selu", generator=g),
    "kaiming_normal_relu_conv": lambda t, g: TORCH_INIT.kaiming_normal_(
        t, nonlinearity="relu", generator=g),
    # nn.Linear / nn.ConvNd reset_parameters: kaiming_uniform_(a=sqrt(5)).
    "torch_default_linear": lambda t, g: TORCH_INIT.kaiming_uniform_(
        t, a=math.sqrt(5.0), generator=g),
    "torch_default_conv": lambda t, g: TORCH_INIT.kaiming_uniform_(
        t, a=math.sqrt(5.0), generator=g),
    # keras: an initializer object, called with the shape.
    "truncated_normal_default_bounds": lambda: keras.initializers.TruncatedNormal(
        0.2, 0.05, seed=SEED),
    "random_uniform": lambda: keras.initializers.RandomUniform(seed=SEED),
    "random_normal": lambda: keras.initializers.RandomNormal(-0.1, 0.3, seed=SEED),
    "variance_scaling_uniform_fan_out": lambda: keras.initializers.VarianceScaling(
        2.0, "fan_out", "uniform", seed=SEED),
    "variance_scaling_truncated_fan_avg": lambda: keras.initializers.VarianceScaling(
        0.5, "fan_avg", "truncated_normal", seed=SEED),
    "variance_scaling_untruncated_fan_in": lambda: keras.initializers.VarianceScaling(
        1.5, "fan_in", "untruncated_normal", seed=SEED),
    "variance_scaling_normal_means_truncated": lambda: keras.initializers.VarianceScaling(
        distribution="normal", seed=SEED),
    "glorot_uniform": lambda: keras.initializers.GlorotUniform(seed=SEED),
    "glorot_normal": lambda: keras.initializers.GlorotNormal(seed=SEED),
    "he_uniform": lambda: keras.initializers.HeUniform(seed=SEED),
    "he_normal_torch_layout": lambda: keras.initializers.HeNormal(seed=SEED),
    "lecun_uniform": lambda: keras.initializers.LecunUniform(seed=SEED),
    "lecun_normal": lambda: keras.initializers.LecunNormal(seed=SEED),
}


def framework_sample(case: Case) -> np.ndarray:
    """Values of the case's framework initializer on a tensor of the same shape."""
    shape = case.framework_shape or case.shape
    if case.framework == "torch":
        generator = torch.Generator().manual_seed(SEED)
        tensor = torch.empty(shape, dtype=torch.float64)
        with warnings.catch_warnings():
            # torch warns when [a, b] is far from the mean; since 2.12 it samples such
            # intervals exactly (uniform proposals with rejection), which is the point here.
            warnings.simplefilter("ignore", UserWarning)
            FRAMEWORK[case.id](tensor, generator)
        return tensor.numpy().reshape(-1)
    initializer = FRAMEWORK[case.id]()
    return keras.ops.convert_to_numpy(initializer(shape, dtype="float64")).reshape(-1)


_SAMPLES: dict[str, np.ndarray] = {}


def sample(case: Case) -> np.ndarray:
    """The case's generated values (float64), computed once per test session."""
    if case.id not in _SAMPLES:
        values, _ = one_tensor(case.init, list(case.shape), convention=case.convention)
        _SAMPLES[case.id] = values.reshape(-1)
    return _SAMPLES[case.id]


def resolved(case: Case) -> ResolvedInit:
    """The case's initializer as the plan resolves it (nothing generated)."""
    spec = spec_of([tensor_layer("t", list(case.shape), case.init)], convention=case.convention)
    return build_plan(spec).outputs[0].plan.init


# -------------------------------------------------------------------- coverage ----


STRUCTURED = {"zeros", "ones", "constant", "orthogonal", "identity", "eye", "dirac", "sparse",
              "sinusoidal"}


def test_schema_initializer_names_equal_registry_keys():
    schema = Spec.model_json_schema()
    union = schema["$defs"]["TensorLayer"]["properties"]["init"]
    mapping = union.get("discriminator", {}).get("mapping", {})
    assert set(mapping) == set(REGISTRY)
    assert set(INITIALIZER_NAMES) == set(REGISTRY)


def test_every_registry_entry_is_covered_here():
    covered = {case.name for case in CASES} | STRUCTURED
    assert covered == set(REGISTRY)


def test_truncation_correction_is_the_std_of_a_normal_cut_at_two_std():
    from weightinit.core.initializers import TRUNCATION_CORRECTION

    assert abs(TRUNCATION_CORRECTION - TRUNCATION_STD) < 1e-15


# ------------------------------------------------------- formulas of the plan ----


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_resolved_expectations_equal_the_formula(case: Case):
    init = resolved(case)
    assert init.expected_mean == pytest.approx(case.expected.mean, rel=1e-12, abs=1e-15)
    assert init.expected_variance == pytest.approx(case.expected.variance, rel=1e-12)
    if case.expected.std is not None:
        assert init.derived["std"] == pytest.approx(case.expected.std, rel=1e-12)
    if case.expected.bound is not None:
        bound = init.derived.get("bound", init.derived.get("limit"))
        assert bound == pytest.approx(case.expected.bound, rel=1e-12)
    if math.isfinite(case.expected.low):
        low = init.derived.get("low", init.derived.get("a"))
        high = init.derived.get("high", init.derived.get("b"))
        assert (low, high) == pytest.approx((case.expected.low, case.expected.high), rel=1e-12)


# ------------------------------------------------------------ generated values ----


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_sample_mean_and_variance_agree_with_the_formula(case: Case):
    values = sample(case)
    n = values.size
    expected = case.expected
    # The sample mean has standard error sigma / sqrt(n).
    assert abs(values.mean() - expected.mean) < SIGMAS * math.sqrt(expected.variance / n)
    # The sample variance has standard error sqrt((mu4 - sigma^4) / n).
    variance_error = math.sqrt((expected.fourth_central_moment - expected.variance**2) / n)
    assert abs(values.var() - expected.variance) < SIGMAS * variance_error


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_samples_respect_the_bounds_exactly(case: Case):
    values = sample(case)
    expected = case.expected
    if not math.isfinite(expected.low):
        # Untruncated normal: P(|z| > 7) = 2.6e-12 per value, 1.3e-7 for 50,000 values.
        sigma = math.sqrt(expected.variance)
        assert np.all(np.abs(values - expected.mean) < 7.0 * sigma)
        return
    assert values.min() >= expected.low
    if expected.high_inclusive:
        assert values.max() <= expected.high
    else:
        assert values.max() < expected.high
    # The extremes come close to the bounds. The outer 1 % of the range at each end holds
    # mass p (from the distribution itself: 1e-2 for uniforms, 2.35e-3 for Keras' +-2
    # std cut, 1.04e-3 at the thin end of N(0, 1) on [3, 4]), so the chance that none
    # of n values falls there is (1 - p)^n, below 1e-22 for every case here; the
    # assertion on it keeps a future case from making this check a coin toss.
    width = expected.high - expected.low
    for p in (expected.dist.cdf(expected.low + 0.01 * width),
              expected.dist.sf(expected.high - 0.01 * width)):
        assert (1.0 - p) ** values.size < 1e-9, "outer 1 % too thin to expect a value"
    assert values.min() < expected.low + 0.01 * width
    assert values.max() > expected.high - 0.01 * width


# --------------------------------------------------------------------- parity ----

PARITY = [case for case in CASES if case.framework is not None]


@pytest.mark.parametrize("case", PARITY, ids=lambda c: f"{c.id}-vs-{c.framework}")
def test_matches_framework_in_distribution(case: Case):
    theirs = framework_sample(case)
    assert theirs.size == sample(case).size
    result = scipy.stats.ks_2samp(sample(case), theirs)
    assert result.pvalue > ALPHA, (case.id, result)


def test_ks_detects_a_ten_percent_std_error():
    """Power check at the sample size above: a 10 % too wide normal must fail."""
    case = next(c for c in CASES if c.id == "kaiming_normal_tanh")
    generator = torch.Generator().manual_seed(SEED)
    wrong = torch.empty(case.shape, dtype=torch.float64)
    std = 1.10 * torch_gain("tanh") / math.sqrt(torch_fans(case.shape)[0])
    TORCH_INIT.normal_(wrong, 0.0, std, generator=generator)
    assert scipy.stats.ks_2samp(sample(case), wrong.numpy().reshape(-1)).pvalue < ALPHA


def test_torch_default_matches_real_linear_and_conv_modules():
    """The default of a spec with no initializers is what nn.Linear/nn.Conv2d draw."""
    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        linear = torch.nn.Linear(200, 250, dtype=torch.float64)
        conv = torch.nn.Conv2d(32, 64, 5, dtype=torch.float64)
    for module, case_id in ((linear, "torch_default_linear"), (conv, "torch_default_conv")):
        case = next(c for c in CASES if c.id == case_id)
        weight = module.weight.detach().numpy().reshape(-1)
        assert scipy.stats.ks_2samp(sample(case), weight).pvalue > ALPHA
    # The bias, which uses the weight's fan_in, is checked in test_fans and the layer
    # parity tests (tests/core/layers).


def test_keras_truncated_normal_from_config_keeps_keras_defaults():
    """{"class_name": "TruncatedNormal"} is Keras' N(0, 0.05) cut at +-2 std (0.1)."""
    values, init = one_tensor({"class_name": "TruncatedNormal", "config": {"seed": 7}},
                              list(DENSE), convention="keras")
    expected = truncated(0.0, 0.05, -0.1, 0.1)
    assert init.expected_variance == pytest.approx(expected.variance, rel=1e-12)
    assert values.min() >= -0.1 and values.max() <= 0.1
    theirs = keras.ops.convert_to_numpy(
        keras.initializers.TruncatedNormal(seed=SEED)(DENSE, dtype="float64")
    ).reshape(-1)
    assert scipy.stats.ks_2samp(values.reshape(-1), theirs).pvalue > ALPHA


def test_trunc_normal_is_not_truncated_normal_for_a_small_std():
    """The torch-name trap: trunc_normal(std=0.02) keeps std 0.02 (bounds +-2 absolute);
    truncated_normal(std=0.02) cuts at +-2 std (Keras' rule), std 0.0176, and says so in
    the plan's warnings under the torch convention."""
    spec = spec_of([tensor_layer("torch_way", list(DENSE), {"name": "trunc_normal", "std": 0.02}),
                    tensor_layer("keras_way", list(DENSE),
                                 {"name": "truncated_normal", "std": 0.02})])
    plan = build_plan(spec)
    by_name = {output.name: output.plan.init for output in plan.outputs}
    assert math.sqrt(by_name["torch_way"].expected_variance) == pytest.approx(0.02, rel=1e-12)
    assert math.sqrt(by_name["keras_way"].expected_variance) == pytest.approx(
        0.02 * TRUNCATION_STD, rel=1e-12)
    assert (by_name["torch_way"].derived["a"], by_name["torch_way"].derived["b"]) == (-2.0, 2.0)
    assert len(plan.warnings) == 1
    assert plan.warnings[0].startswith("keras_way: truncated_normal without a and b")
    assert "trunc_normal" in plan.warnings[0]


def test_truncated_normal_with_bounds_or_under_keras_does_not_warn():
    bounded = {"name": "truncated_normal", "std": 0.02, "a": -0.04, "b": 0.04}
    assert build_plan(spec_of([tensor_layer("t", [4, 4], bounded)])).warnings == []
    keras_spec = spec_of([tensor_layer("t", [4, 4], {"name": "truncated_normal", "std": 0.02})],
                         convention="keras")
    assert build_plan(keras_spec).warnings == []


def test_trunc_normal_warns_as_torch_does_when_the_mean_is_far_from_the_bounds():
    init = {"name": "trunc_normal", "mean": 5.0, "std": 1.0}
    plan = build_plan(spec_of([tensor_layer("t", [4, 4], init)]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        TORCH_INIT.trunc_normal_(torch.empty(4, 4), mean=5.0, std=1.0)
    theirs = [str(w.message) for w in caught]
    assert len(theirs) == 1 and len(plan.warnings) == 1
    assert theirs[0] in plan.warnings[0]
    quiet = build_plan(spec_of([tensor_layer("t", [4, 4], "trunc_normal")]))
    assert quiet.warnings == []


@pytest.mark.parametrize("init", [
    {"name": "trunc_normal", "std": 0.0},
    {"name": "trunc_normal", "a": 1.0, "b": 1.0},
    {"name": "trunc_normal", "a": 2.0, "b": -2.0},
])
def test_trunc_normal_refuses_what_torch_cannot_sample(init):
    with pytest.raises(ValueError):
        spec_of([tensor_layer("t", [4, 4], init)])
