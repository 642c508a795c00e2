"""Normalization layers against torch's modules and Keras' layers.

All defaults are constants, so values are compared exactly (the parity helper treats a
position that is equal for every framework seed as fixed).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import torch
from layer_parity import (
    assert_all_same_distribution,
    assert_loads_strictly,
    holder,
    keras_signature,
    keras_stacked,
    our_signature,
    ours_stacked,
    spec_of,
    torch_stacked,
    write_and_load_torch,
)
from weightinit.core import (
    ChunkStream,
    Observer,
    SpecError,
    build_plan,
    header_bytes,
    report_document,
    stream_bytes,
)

nn = torch.nn
L = keras.layers

# (spec layer, torch module) pairs; each is checked as the attribute "norm" of a module.
TORCH_CASES = {
    "batch_norm": ({"type": "batch_norm", "num_features": 8}, lambda: nn.BatchNorm1d(8)),
    "batch_norm_2d_no_affine": (
        {"type": "batch_norm", "num_features": 8, "affine": False},
        lambda: nn.BatchNorm2d(8, affine=False),
    ),
    "batch_norm_3d_no_stats": (
        {"type": "batch_norm", "num_features": 8, "track_running_stats": False},
        lambda: nn.BatchNorm3d(8, track_running_stats=False),
    ),
    "layer_norm": ({"type": "layer_norm", "normalized_shape": 6}, lambda: nn.LayerNorm(6)),
    "layer_norm_2d_no_bias": (
        {"type": "layer_norm", "normalized_shape": [4, 6], "bias": False},
        lambda: nn.LayerNorm([4, 6], bias=False),
    ),
    "layer_norm_no_affine": (
        {"type": "layer_norm", "normalized_shape": 6, "elementwise_affine": False},
        lambda: nn.LayerNorm(6, elementwise_affine=False),
    ),
    "rms_norm": ({"type": "rms_norm", "normalized_shape": [4, 6]}, lambda: nn.RMSNorm([4, 6])),
    "group_norm": (
        {"type": "group_norm", "num_groups": 2, "num_channels": 8},
        lambda: nn.GroupNorm(2, 8),
    ),
}


@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_torch_norm_loads_strictly_with_torch_names_and_dtypes(tmp_path, case):
    layer, factory = TORCH_CASES[case]
    assert_loads_strictly(spec_of("torch", [{**layer, "name": "norm"}]),
                          holder("norm", factory()), tmp_path)


@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_torch_norm_values_equal_torch_defaults(case):
    layer, factory = TORCH_CASES[case]
    ours = ours_stacked("torch", [{**layer, "name": "norm"}], 2)
    assert_all_same_distribution(ours, torch_stacked(lambda: holder("norm", factory()), 2))


def test_num_batches_tracked_is_int64_zero_whatever_the_dtype(tmp_path):
    layer = {"type": "batch_norm", "name": "norm", "num_features": 4, "dtype": "float16"}
    loaded = write_and_load_torch(spec_of("torch", [layer], dtype="bfloat16"), tmp_path)
    assert loaded["norm.num_batches_tracked"].dtype == torch.int64
    assert loaded["norm.num_batches_tracked"].shape == ()
    assert loaded["norm.num_batches_tracked"].item() == 0
    assert loaded["norm.running_var"].dtype == torch.float16


def test_report_observes_the_int64_counter():
    plan = build_plan(spec_of("torch", [{"type": "batch_norm", "name": "bn", "num_features": 4}]))
    observer = Observer()
    for _ in stream_bytes(header_bytes(plan), iter(ChunkStream(plan, with_stats=True)), observer):
        pass
    entries = {t["name"]: t for t in report_document(plan, observer)["tensors"]}
    counter = entries["bn.num_batches_tracked"]
    assert counter["dtype"] == "int64"
    assert (counter["mean"], counter["variance"], counter["min"], counter["max"]) == (0, 0, 0, 0)
    assert entries["bn.running_var"]["mean"] == 1.0


def _keras_model(layer, input_shape=(5, 8)):
    return lambda: keras.Sequential([keras.Input(input_shape), layer()], name="model")


KERAS_CASES = {
    "batch_norm": (
        {"type": "batch_norm", "num_features": 8},
        _keras_model(lambda: L.BatchNormalization(name="norm")),
    ),
    "batch_norm_no_affine": (
        {"type": "batch_norm", "num_features": 8, "affine": False},
        _keras_model(lambda: L.BatchNormalization(center=False, scale=False, name="norm")),
    ),
    "layer_norm": (
        {"type": "layer_norm", "normalized_shape": 8},
        _keras_model(lambda: L.LayerNormalization(name="norm")),
    ),
    "layer_norm_2d_no_bias": (
        {"type": "layer_norm", "normalized_shape": [5, 8], "bias": False},
        _keras_model(lambda: L.LayerNormalization(axis=[-2, -1], center=False, name="norm")),
    ),
    "rms_norm": (
        {"type": "rms_norm", "normalized_shape": 8},
        _keras_model(lambda: L.RMSNormalization(name="norm")),
    ),
    "group_norm": (
        {"type": "group_norm", "num_groups": 2, "num_channels": 8},
        _keras_model(lambda: L.GroupNormalization(groups=2, name="norm")),
    ),
}


@pytest.mark.parametrize("case", sorted(KERAS_CASES))
def test_keras_norm_has_keras_weight_paths(case):
    layer, build = KERAS_CASES[case]
    assert our_signature(spec_of("keras", [{**layer, "name": "norm"}])) == keras_signature(build)


@pytest.mark.parametrize("case", sorted(KERAS_CASES))
def test_keras_norm_values_equal_keras_defaults(case):
    layer, build = KERAS_CASES[case]
    ours = ours_stacked("keras", [{**layer, "name": "norm"}], 2)
    assert_all_same_distribution(ours, keras_stacked(build, 2))


def test_norm_initializer_overrides_apply_per_role():
    layer = {
        "type": "batch_norm", "name": "bn", "num_features": 4,
        "weight_init": {"name": "constant", "value": 0.5}, "bias_init": "ones",
        "running_mean_init": {"name": "constant", "value": 2.0}, "running_var_init": "zeros",
    }
    ours = ours_stacked("torch", [layer], 1)
    assert np.all(ours["bn.weight"] == 0.5) and np.all(ours["bn.bias"] == 1.0)
    assert np.all(ours["bn.running_mean"] == 2.0) and np.all(ours["bn.running_var"] == 0.0)


def test_keras_batch_norm_without_running_stats_is_a_spec_error():
    layer = {"type": "batch_norm", "name": "bn", "num_features": 4, "track_running_stats": False}
    with pytest.raises(SpecError) as caught:
        build_plan(spec_of("keras", [layer]))
    assert caught.value.loc[-1] == "track_running_stats"


def test_group_norm_channels_must_divide_into_groups():
    layer = {"type": "group_norm", "name": "gn", "num_groups": 3, "num_channels": 8}
    with pytest.raises(SpecError) as caught:
        build_plan(spec_of("torch", [layer]))
    assert caught.value.loc[-1] == "num_groups"
