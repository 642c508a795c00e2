"""``load_weights``: keras-convention tensors assigned to Keras 3 models, whether their
paths carry the model's name (built in Python) or not (rebuilt from JSON)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

import ml_dtypes  # noqa: E402,F401  (bfloat16 for safetensors.numpy)
import numpy as np  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402
from weightinit.core import Spec, build_plan, write_file  # noqa: E402
from weightinit.service.adapters.keras_helpers import match_paths  # noqa: E402
from weightinit.service.client.client import DownloadedFile  # noqa: E402

from weightinit.keras import LoadResult, assign_into, load_weights, spec_from_model  # noqa: E402

SPEC: dict[str, Any] = {
    "seed": 5,
    "convention": "keras",
    "layers": [
        {"type": "conv2d", "name": "conv", "in_channels": 1, "out_channels": 4,
         "kernel_size": 3},
        {"type": "batch_norm", "name": "bn", "num_features": 4},
        {"type": "linear", "name": "dense", "in_features": 16, "out_features": 3},
    ],
}


def build_cnn() -> Any:
    layers = keras.layers
    return keras.Sequential([
        keras.Input((6, 6, 1)), layers.Conv2D(4, 3, name="conv"),
        layers.BatchNormalization(name="bn"), layers.MaxPooling2D(), layers.Flatten(),
        layers.Dropout(0.1), layers.Dense(3, name="dense"),
    ], name="seq")


def arrays_for(spec: dict[str, Any], tmp_path: Path) -> dict[str, np.ndarray]:
    path = tmp_path / "weights.safetensors"
    write_file(build_plan(Spec.model_validate(spec)), path)
    return load_file(str(path))


def test_python_built_model_with_its_name_in_the_paths_loads(tmp_path: Path) -> None:
    model = build_cnn()
    assert model.weights[0].path == "seq/conv/kernel"  # the prefix this is about
    arrays = arrays_for(SPEC, tmp_path)
    assert load_weights(model, arrays) == LoadResult([], [])
    assert len(arrays) == len(model.weights)
    np.testing.assert_array_equal(model.get_layer("bn").moving_variance.numpy(),
                                  arrays["bn/moving_variance"])


def test_the_same_model_rebuilt_from_json_loads(tmp_path: Path) -> None:
    rebuilt = keras.models.model_from_json(build_cnn().to_json())
    assert rebuilt.weights[0].path == "conv/kernel"
    arrays = arrays_for(SPEC, tmp_path)
    load_weights(rebuilt, arrays)
    np.testing.assert_array_equal(rebuilt.get_layer("conv").kernel.numpy(),
                                  arrays["conv/kernel"])


def test_wrapper_and_nested_model_names_in_paths_are_matched(tmp_path: Path) -> None:
    layers = keras.layers
    inner = keras.Sequential([keras.Input((5, 4)), layers.Bidirectional(
        layers.LSTM(3, name="bi"), name="bi")], name="encoder")
    inputs = keras.Input((5, 4))
    model = keras.Model(inputs, layers.Dense(2, name="out")(inner(inputs)), name="outer")
    spec = {"seed": 1, "convention": "keras", "layers": [
        {"type": "lstm", "name": "bi", "input_size": 4, "hidden_size": 3,
         "bidirectional": True},
        {"type": "linear", "name": "out", "in_features": 6, "out_features": 2}]}
    arrays = arrays_for(spec, tmp_path)
    for candidate in (model, keras.models.model_from_json(model.to_json())):
        assert load_weights(candidate, arrays) == ([], [])
        kernel = next(v for v in candidate.weights
                      if v.path.endswith("forward_bi/lstm_cell/kernel"))
        np.testing.assert_array_equal(kernel.numpy(),
                                      arrays["bi/forward_bi/lstm_cell/kernel"])


def test_missing_and_extra_tensors_are_named(tmp_path: Path) -> None:
    arrays = arrays_for(SPEC, tmp_path)
    arrays["stray/kernel"] = arrays.pop("dense/bias")
    model = build_cnn()
    before = model.get_layer("conv").kernel.numpy().copy()
    with pytest.raises(ValueError) as caught:
        load_weights(model, arrays)
    assert "seq/dense/bias" in str(caught.value) and "stray/kernel" in str(caught.value)
    np.testing.assert_array_equal(model.get_layer("conv").kernel.numpy(), before)
    result = load_weights(model, arrays, strict=False)
    assert result == LoadResult(["seq/dense/bias"], ["stray/kernel"])
    np.testing.assert_array_equal(model.get_layer("conv").kernel.numpy(),
                                  arrays["conv/kernel"])


def test_wrong_shape_is_named(tmp_path: Path) -> None:
    arrays = arrays_for(SPEC, tmp_path)
    arrays["dense/kernel"] = np.zeros((3, 16), np.float32)
    with pytest.raises(ValueError, match="seq/dense/kernel"):
        load_weights(build_cnn(), arrays)


def test_bfloat16_tensors_are_assigned_exactly(tmp_path: Path) -> None:
    arrays = arrays_for({**SPEC, "dtype": "bfloat16"}, tmp_path)
    assert arrays["conv/kernel"].dtype.name == "bfloat16"
    model = build_cnn()
    load_weights(model, tmp_path / "weights.safetensors")  # a file works too
    np.testing.assert_array_equal(model.get_layer("conv").kernel.numpy(),
                                  arrays["conv/kernel"].astype(np.float32))


def test_ambiguous_suffixes_are_left_unmatched() -> None:
    matches, unmatched, unused = match_paths(
        ["m/a/dense/kernel", "m/b/dense/kernel"], ["dense/kernel"], "m")
    assert matches == {} and len(unmatched) == 2 and unused == ["dense/kernel"]
    matches, _, _ = match_paths(["m/x/kernel"], ["kernel"], "m")
    assert matches == {}  # a bare weight name is too weak a match


def test_spec_from_model_carries_the_models_json() -> None:
    model = build_cnn()
    spec = spec_from_model(model, seed=9, dtype="bfloat16")
    assert spec["convention"] == "keras" and spec["seed"] == 9
    assert spec["keras_model"]["config"]["name"] == "seq"


def test_a_clients_file_record_loads(tmp_path: Path) -> None:
    arrays = arrays_for(SPEC, tmp_path)
    path = tmp_path / "weights.safetensors"
    model = build_cnn()
    record = {"path": str(path), "bytes": path.stat().st_size, "file_sha256": "ab"}
    assert load_weights(model, record) == ([], [])
    assert load_weights(build_cnn(), DownloadedFile(path, path.stat().st_size, "ab")) == ([], [])
    np.testing.assert_array_equal(model.get_layer("dense").kernel.numpy(),
                                  arrays["dense/kernel"])


def test_assign_into_is_a_deprecated_alias(tmp_path: Path) -> None:
    arrays = arrays_for(SPEC, tmp_path)
    with pytest.warns(DeprecationWarning, match="load_weights"):
        matched = assign_into(build_cnn(), arrays)
    assert matched["seq/conv/kernel"] == "conv/kernel" and len(matched) == len(arrays)
