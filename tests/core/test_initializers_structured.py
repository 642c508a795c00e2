"""Initializers that are not plain draws, and Keras config objects.

Deterministic fills (zeros, ones, constant, eye, identity, dirac) must equal the
framework's output exactly; orthogonal must have orthonormal rows or columns in the
orientation of the framework's own flattening rule (as torch's ``orthogonal_`` and Keras'
``Orthogonal`` do on the same shape); sparse must zero exactly ``ceil(sparsity * rows)``
entries per column, as torch's ``sparse_`` does. Keras config objects, as Keras itself
serialises them, resolve to the same initializer and bytes as our names.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import scipy.stats
import torch

os.environ["KERAS_BACKEND"] = "torch"  # chosen before keras is imported
import keras
from engine_helpers import one_tensor

SEED = 77
ALPHA = 1e-6  # per KS comparison (3 in this file): family-wise false alarm below 1e-5


def keras_values(initializer, shape) -> np.ndarray:
    return keras.ops.convert_to_numpy(initializer(shape, dtype="float32"))


def check_expectations(values: np.ndarray, init) -> None:
    """A deterministic fill's expected mean/variance are those of its exact values."""
    exact = values.astype(np.float64)
    assert init.expected_mean == pytest.approx(exact.mean(), rel=1e-12, abs=1e-15)
    assert init.expected_variance == pytest.approx(exact.var(), rel=1e-12, abs=1e-15)


# ------------------------------------------------------------------ constant fills ----


@pytest.mark.parametrize("convention", ["torch", "keras"])
@pytest.mark.parametrize(
    ("init", "torch_fill", "keras_initializer"),
    [
        ("zeros", torch.nn.init.zeros_, keras.initializers.Zeros()),
        ("ones", torch.nn.init.ones_, keras.initializers.Ones()),
        ({"name": "constant", "value": 0.37},
         lambda t: torch.nn.init.constant_(t, 0.37), keras.initializers.Constant(0.37)),
    ],
    ids=["zeros", "ones", "constant"],
)
def test_constant_fills_equal_both_frameworks(convention, init, torch_fill, keras_initializer):
    shape = (7, 3, 2)
    values, _ = one_tensor(init, list(shape), convention=convention, dtype="float32")
    np.testing.assert_array_equal(values, torch_fill(torch.empty(shape)).numpy())
    np.testing.assert_array_equal(values, keras_values(keras_initializer, shape))
    # Expectations are of the exact value (0.37), before rounding to the output dtype.
    values64, resolved = one_tensor(init, list(shape), convention=convention)
    check_expectations(values64, resolved)


# ------------------------------------------------------------------- eye, identity ----


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 4)])
def test_eye_equals_torch_eye(shape):
    values, resolved = one_tensor("eye", list(shape), dtype="float32")
    np.testing.assert_array_equal(values, torch.nn.init.eye_(torch.empty(shape)).numpy())
    check_expectations(values, resolved)


@pytest.mark.parametrize("shape", [(4, 6), (6, 4)])
def test_identity_with_gain_equals_keras_identity(shape):
    values, resolved = one_tensor(
        {"name": "identity", "gain": 2.5}, list(shape), convention="keras", dtype="float32"
    )
    np.testing.assert_array_equal(
        values, keras_values(keras.initializers.Identity(gain=2.5), shape)
    )
    check_expectations(values, resolved)


# --------------------------------------------------------------------------- dirac ----


@pytest.mark.parametrize(
    ("shape", "groups"),
    [((6, 4, 3, 3), 2), ((4, 6, 5), 1), ((4, 2, 3, 3, 3), 1), ((6, 2, 3), 3), ((3, 5, 4, 4), 1)],
)
def test_dirac_equals_torch_dirac_in_both_layouts(shape, groups):
    init = {"name": "dirac", "groups": groups}
    expected = torch.nn.init.dirac_(torch.empty(shape), groups).numpy()
    values, resolved = one_tensor(init, list(shape), dtype="float32")
    np.testing.assert_array_equal(values, expected)
    check_expectations(values, resolved)
    # Keras layout (*k, in, out): the same kernel, transposed.
    keras_layout = np.moveaxis(expected, (0, 1), (-1, -2))
    keras_shape = list(keras_layout.shape)
    values, resolved = one_tensor(init, keras_shape, convention="keras", dtype="float32")
    np.testing.assert_array_equal(values, keras_layout)
    check_expectations(values, resolved)


# ---------------------------------------------------------------------- orthogonal ----


def torch_matrix(values: np.ndarray) -> np.ndarray:
    """torch's matrix view: dim 0 rows, trailing dims flattened into columns."""
    return values.reshape(values.shape[0], -1)


def keras_matrix(values: np.ndarray) -> np.ndarray:
    """Keras' matrix view: leading dims flattened into rows, last dim columns."""
    return values.reshape(-1, values.shape[-1])


def assert_orthogonal(matrix: np.ndarray, gain: float, tolerance: float) -> None:
    """Rows orthonormal (times gain) if there are fewer rows, else columns."""
    rows, cols = matrix.shape
    gram = matrix @ matrix.T if rows < cols else matrix.T @ matrix
    np.testing.assert_allclose(gram, gain**2 * np.eye(min(rows, cols)), atol=tolerance)


@pytest.mark.parametrize(
    ("convention", "shape"),
    [("torch", (6, 2, 5)), ("torch", (20, 2, 3)), ("keras", (3, 4, 5)), ("keras", (2, 2, 10)),
     ("torch", (7, 7))],
)
def test_orthogonal_is_orthogonal_in_the_frameworks_orientation(convention, shape):
    gain = 1.7
    values, resolved = one_tensor({"name": "orthogonal", "gain": gain}, list(shape),
                                  convention=convention)
    if convention == "torch":
        theirs = torch.nn.init.orthogonal_(torch.empty(shape, dtype=torch.float64), gain)
        view = torch_matrix
        theirs = theirs.numpy()
    else:
        keras_init = keras.initializers.Orthogonal(gain=gain, seed=SEED)
        theirs = keras.ops.convert_to_numpy(keras_init(shape, dtype="float64"))
        view = keras_matrix
    # Our values in float64 are orthogonal to rounding; the framework's to float64 too.
    assert_orthogonal(view(values), gain, 1e-12)
    assert_orthogonal(view(theirs), gain, 1e-12)
    rows, cols = view(values).shape
    # Sum of squares is gain^2 * min(rows, cols), so the mean square is gain^2 / max.
    assert resolved.expected_variance == pytest.approx(gain**2 / max(rows, cols), rel=1e-12)
    assert float(np.mean(values**2)) == pytest.approx(gain**2 / max(rows, cols), rel=1e-12)


def test_orthogonal_entries_match_torch_in_distribution():
    """Entries of a Haar-orthogonal 300x200 matrix: same law as torch's (sign-corrected QR)."""
    shape = (300, 200)
    values, _ = one_tensor("orthogonal", list(shape))
    generator = torch.Generator().manual_seed(SEED)
    theirs = torch.nn.init.orthogonal_(torch.empty(shape, dtype=torch.float64),
                                       generator=generator)
    assert scipy.stats.ks_2samp(values.reshape(-1), theirs.numpy().reshape(-1)).pvalue > ALPHA


def test_orthogonal_needs_two_dimensions():
    from engine_helpers import spec_of, tensor_layer
    from weightinit.core import SpecError, build_plan

    with pytest.raises(SpecError) as error:
        build_plan(spec_of([tensor_layer("t", [5], "orthogonal")]))
    assert error.value.loc == ("layers", 0, "init")


# -------------------------------------------------------------------------- sparse ----


def test_sparse_zeros_exactly_ceil_sparsity_rows_per_column_as_torch():
    shape, sparsity, std = (300, 170), 0.3, 0.2
    values, resolved = one_tensor({"name": "sparse", "sparsity": sparsity, "std": std},
                                  list(shape))
    generator = torch.Generator().manual_seed(SEED)
    theirs = torch.nn.init.sparse_(torch.empty(shape, dtype=torch.float64), sparsity, std,
                                   generator=generator).numpy()
    zeros = math.ceil(sparsity * shape[0])
    # A normal draw is exactly 0 with probability 0: every zero is a zeroed entry.
    assert np.all((values == 0).sum(axis=0) == zeros)
    assert np.all((theirs == 0).sum(axis=0) == zeros)
    kept = values[values != 0]
    n = kept.size
    # Nonzero values are N(0, std): mean within 5 sigma/sqrt(n); variance within 5 standard
    # errors sqrt(2 sigma^4 / n) (normal 4th moment 3 sigma^4).
    assert abs(kept.mean()) < 5 * std / math.sqrt(n)
    assert abs(kept.var() - std**2) < 5 * math.sqrt(2 * std**4 / n)
    assert scipy.stats.ks_2samp(kept, theirs[theirs != 0]).pvalue > ALPHA
    assert resolved.expected_variance == pytest.approx(
        std**2 * (shape[0] - zeros) / shape[0], rel=1e-12
    )


def test_sparse_zeroed_rows_differ_between_columns():
    values, _ = one_tensor({"name": "sparse", "sparsity": 0.5}, [40, 30])
    masks = {tuple(np.flatnonzero(values[:, col] == 0)) for col in range(30)}
    # Independent row choices per column, as torch's randperm: each column zeroes one of
    # C(40, 20) = 1.4e11 equally likely row sets, so two of the 30 columns share one
    # with probability below C(30, 2) / 1.4e11 = 3e-9. Every mask is distinct.
    assert len(masks) == 30


# ------------------------------------------------------------ Keras config objects ----

KERAS_EQUIVALENTS = [
    (keras.initializers.Zeros(), "zeros"),
    (keras.initializers.Ones(), "ones"),
    (keras.initializers.Constant(0.5), {"name": "constant", "value": 0.5}),
    (keras.initializers.RandomUniform(-0.2, 0.1),
     {"name": "random_uniform", "minval": -0.2, "maxval": 0.1}),
    (keras.initializers.RandomNormal(0.1, 0.3),
     {"name": "random_normal", "mean": 0.1, "stddev": 0.3}),
    (keras.initializers.TruncatedNormal(), {"name": "truncated_normal", "mean": 0.0,
                                            "std": 0.05}),
    (keras.initializers.TruncatedNormal(1.0, 0.2),
     {"name": "truncated_normal", "mean": 1.0, "std": 0.2, "a": 0.6, "b": 1.4}),
    (keras.initializers.VarianceScaling(2.0, "fan_out", "uniform"),
     {"name": "variance_scaling", "scale": 2.0, "mode": "fan_out", "distribution": "uniform"}),
    (keras.initializers.VarianceScaling(distribution="untruncated_normal"),
     {"name": "variance_scaling", "distribution": "untruncated_normal"}),
    (keras.initializers.GlorotUniform(), "glorot_uniform"),
    (keras.initializers.GlorotNormal(), "glorot_normal"),
    (keras.initializers.HeUniform(), "he_uniform"),
    (keras.initializers.HeNormal(), "he_normal"),
    (keras.initializers.LecunUniform(), "lecun_uniform"),
    (keras.initializers.LecunNormal(), "lecun_normal"),
    (keras.initializers.Orthogonal(gain=2.0), {"name": "orthogonal", "gain": 2.0}),
    (keras.initializers.Identity(), "identity"),
]


@pytest.mark.parametrize(
    ("keras_initializer", "ours"), KERAS_EQUIVALENTS,
    ids=[type(k).__name__ + str(i) for i, (k, _) in enumerate(KERAS_EQUIVALENTS)],
)
def test_keras_config_object_resolves_like_our_name(keras_initializer, ours):
    config = keras.saving.serialize_keras_object(keras_initializer)  # as Keras writes it
    shape = [12, 8]
    from_keras, resolved_keras = one_tensor(config, shape, convention="keras")
    from_name, resolved_name = one_tensor(ours, shape, convention="keras")
    assert resolved_keras.config == resolved_name.config
    np.testing.assert_array_equal(from_keras, from_name)


def test_keras_config_seed_is_ignored():
    config = {"class_name": "VarianceScaling",
              "config": {"scale": 1.0, "mode": "fan_avg", "distribution": "truncated_normal"}}
    seeded = {"class_name": config["class_name"], "config": {**config["config"], "seed": 42}}
    a, _ = one_tensor(config, [16, 16], convention="keras")
    b, _ = one_tensor(seeded, [16, 16], convention="keras")
    np.testing.assert_array_equal(a, b)


def test_keras_config_normal_distribution_means_truncated_normal():
    config = {"class_name": "VarianceScaling", "config": {"distribution": "normal"}}
    _, resolved = one_tensor(config, [16, 16], convention="keras")
    assert resolved.config["distribution"] == "truncated_normal"


@pytest.mark.parametrize(("alias", "value"), [("zero", 0.0), ("one", 1.0)])
def test_keras_string_aliases(alias, value):
    values, _ = one_tensor(alias, [3, 2])
    assert np.all(values == value)


# ------------------------------------------------------------------- sinusoidal ----


def whisper_formula(length: int, channels: int, max_timescale: float) -> np.ndarray:
    """transformers' ``sinusoids`` (modeling_whisper), written out in float64 numpy."""
    increment = math.log(max_timescale) / (channels // 2 - 1)
    inverse = np.exp(-increment * np.arange(channels // 2))
    angle = np.arange(length)[:, None] * inverse[None, :]
    return np.concatenate([np.sin(angle), np.cos(angle)], axis=1)


@pytest.mark.parametrize(("shape", "max_timescale"), [((1500, 384), 10000.0), ((33, 6), 7.5),
                                                      ((1, 4), 1.0)])
def test_sinusoidal_is_whispers_table(shape, max_timescale):
    """float64 output equal to the formula in libm arithmetic up to their rounding
    differences: exp, sin and cos are each within an ulp on both sides, and an ulp of the
    frequency moves the angle t * f by t ulps, so |difference| <= 4 eps (1 + t * f). The
    float32 output is that value rounded, but near float32 rounding ties."""
    init = {"name": "sinusoidal", "max_timescale": max_timescale}
    values, resolved = one_tensor(init, list(shape), dtype="float64")
    expected = whisper_formula(*shape, max_timescale)
    rows = np.arange(shape[0], dtype=np.float64)[:, None]
    assert np.all(np.abs(values - expected) <= 4 * 2.0**-53 * (1 + rows))
    as32, _ = one_tensor(init, list(shape), dtype="float32")
    assert np.mean(as32 == expected.astype(np.float32)) > 0.999
    assert np.all(np.abs(as32 - expected) <= np.spacing(np.abs(expected).astype(np.float32)))
    check_expectations(values, resolved)
    assert not any(isinstance(v, float) and v != v for v in resolved.config.values())


def test_sinusoidal_is_the_same_in_any_chunk_and_shard():
    from engine_helpers import generate, spec_of, tensor_layer
    from weightinit.core import build_plan

    layer = [tensor_layer("t", [64, 16], "sinusoidal")]
    whole = generate(build_plan(spec_of(layer)))["t"]
    pieces = generate(build_plan(spec_of(layer)), chunk_bytes=40)["t"]
    half = generate(build_plan(spec_of(layer, shard={"dim": 1, "rank": 1, "world_size": 2})))
    np.testing.assert_array_equal(whole, pieces)
    np.testing.assert_array_equal(whole[:, 8:], half["t"])


@pytest.mark.parametrize(("shape", "message"), [([16], "2-D"), ([8, 7], "even"),
                                                ([8, 2], "at least 4"),
                                                ([2**19 + 1, 4], "at most")])
def test_sinusoidal_refuses_shapes_it_cannot_fill(shape, message):
    from engine_helpers import spec_of, tensor_layer
    from weightinit.core import SpecError, build_plan

    with pytest.raises(SpecError, match=message):
        build_plan(spec_of([tensor_layer("t", shape, "sinusoidal")]))
