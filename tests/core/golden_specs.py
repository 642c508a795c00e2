"""The reference specs of the golden vectors, and how their digests are computed.

Changing a spec here changes its digests: add new specs instead of editing these.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from weightinit.core import ChunkStream, Plan, Spec, build_plan, header_bytes
from weightinit.core.safetensors_io.writer import file_metadata


def _t(name: str, shape: list[int], init: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "tensor", "name": name, "shape": shape, "init": init, **extra}


EVERY_INITIALIZER = {
    "seed": 20260101,
    "convention": "torch",
    "dtype": "float32",
    "layers": [
        {"type": "linear", "name": "fc", "in_features": 24, "out_features": 16},
        {"type": "conv2d", "name": "conv", "in_channels": 4, "out_channels": 6,
         "kernel_size": 3, "groups": 2},
        {"type": "conv1d", "name": "up", "in_channels": 6, "out_channels": 4, "kernel_size": 5,
         "transposed": True},
        {"type": "repeat", "name": "blocks", "count": 2, "layers": [
            {"type": "repeat", "name": "inner", "count": 2, "layers": [
                {"type": "linear", "name": "proj", "in_features": 8, "out_features": 8,
                 "weight_init": {"name": "kaiming_uniform", "nonlinearity": "relu"},
                 "bias_init": "zeros"}]}]},
        _t("zeros", [7, 3], "zeros"),
        _t("ones", [7, 3], "ones"),
        _t("constant", [7, 3], {"name": "constant", "value": 0.1}),
        _t("uniform", [33, 31], {"name": "uniform", "low": -0.5, "high": 1.5}),
        _t("normal", [33, 31], {"name": "normal", "mean": 0.25, "std": 0.02}),
        _t("truncated_normal", [33, 31],
           {"name": "truncated_normal", "mean": 0.1, "std": 1.0, "a": -0.5, "b": 2.0}),
        _t("truncated_normal_default", [1001], {"name": "truncated_normal", "std": 0.02}),
        _t("random_uniform", [33, 31], "random_uniform"),
        _t("random_normal", [33, 31], "random_normal"),
        _t("vs_uniform", [3, 3, 8, 16], {"name": "variance_scaling", "scale": 2.0,
                                         "mode": "fan_out", "distribution": "uniform"}),
        _t("vs_truncated", [3, 3, 8, 16], {"name": "variance_scaling", "mode": "fan_avg"}),
        _t("vs_untruncated", [3, 3, 8, 16], {"name": "variance_scaling", "scale": 0.5,
                                             "mode": "fan_geo_avg",
                                             "distribution": "untruncated_normal"}),
        _t("glorot_uniform", [40, 30], "glorot_uniform"),
        _t("glorot_normal", [40, 30], "glorot_normal"),
        _t("he_uniform", [40, 30], "he_uniform"),
        _t("he_normal", [40, 30], "he_normal"),
        _t("lecun_uniform", [40, 30], "lecun_uniform"),
        _t("lecun_normal", [40, 30], "lecun_normal"),
        _t("xavier_uniform", [40, 30], {"name": "xavier_uniform", "gain": 1.5}),
        _t("xavier_normal", [40, 30], "xavier_normal"),
        _t("kaiming_uniform", [40, 30], {"name": "kaiming_uniform", "a": 0.1}),
        _t("kaiming_normal", [16, 8, 3, 3], {"name": "kaiming_normal", "mode": "fan_out",
                                             "nonlinearity": "tanh"}),
        _t("torch_default", [40, 30], "torch_default"),
        _t("identity", [5, 7], {"name": "identity", "gain": 2.0}),
        _t("eye", [7, 5], "eye"),
        _t("dirac", [6, 4, 3, 3], {"name": "dirac", "groups": 2}),
        _t("sparse", [20, 15], {"name": "sparse", "sparsity": 0.3, "std": 0.5}),
    ],
}

KERAS = {
    "seed": 2**64 - 1,
    "convention": "keras",
    "layers": [
        {"type": "linear", "name": "dense", "in_features": 24, "out_features": 16},
        {"type": "conv2d", "name": "conv", "in_channels": 4, "out_channels": 6,
         "kernel_size": [3, 2]},
        {"type": "conv2d", "name": "deconv", "in_channels": 4, "out_channels": 6,
         "kernel_size": 3, "transposed": True, "bias": False},
        {"type": "repeat", "name": "block", "count": 2, "layers": [
            {"type": "linear", "name": "d", "in_features": 8, "out_features": 8,
             "weight_init": {"class_name": "GlorotNormal", "config": {"seed": 3}},
             "bias_init": {"class_name": "TruncatedNormal", "config": {}}}]},
    ],
}


def _per_dtype(dtype: str, seed: int) -> dict[str, Any]:
    return {
        "seed": seed,
        "convention": "torch",
        "dtype": dtype,
        "layers": [
            {"type": "linear", "name": "fc", "in_features": 31, "out_features": 17},
            _t("uniform", [257], {"name": "uniform", "low": -2.0, "high": 3.0}),
            _t("normal", [257], {"name": "normal", "mean": 1.0, "std": 3.0}),
            _t("truncated_normal", [257],
               {"name": "truncated_normal", "std": 1.0, "a": -3.0, "b": 0.5}),
            _t("he_normal", [16, 16], "he_normal"),
            _t("constant", [5], {"name": "constant", "value": 0.1}),
            _t("eye", [4, 6], "eye"),
        ],
    }


INT64 = {
    "seed": 5,
    "convention": "torch",
    "layers": [{"type": "batch_norm", "name": "bn", "num_features": 6}],
}

# torch's trunc_normal_ (added after the first release of v1: its own spec, so the specs
# above keep their digests), with bf16 for the ViT case std 0.02, and an empty tensor.
TRUNC_NORMAL = {
    "seed": 13,
    "convention": "torch",
    "layers": [
        _t("trunc_normal_default", [33, 31], "trunc_normal"),
        _t("trunc_normal_absolute", [257],
           {"name": "trunc_normal", "mean": 0.5, "std": 2.0, "a": -1.0, "b": 3.0}),
        _t("trunc_normal_vit", [16, 64], {"name": "trunc_normal", "std": 0.02},
           dtype="bfloat16"),
        {"type": "linear", "name": "empty", "in_features": 0, "out_features": 5},
    ],
}

# The fixed sinusoidal table (Whisper's encoder positions), in float32 and float64: the
# float64 bytes pin the portable sin/cos/exp themselves, not just their float32 rounding.
SINUSOIDAL = {
    "seed": 9,
    "convention": "torch",
    "dtype": "float64",
    "layers": [
        _t("positions", [1500, 12], "sinusoidal"),
        _t("positions_f32", [37, 8], {"name": "sinusoidal", "max_timescale": 500.0},
           dtype="float32"),
    ],
}

GOLDEN_SPECS: dict[str, dict[str, Any]] = {
    "every_initializer_float32": EVERY_INITIALIZER,
    "keras_float32": KERAS,
    "float16": _per_dtype("float16", 1),
    "bfloat16": _per_dtype("bfloat16", 2),
    "float64": _per_dtype("float64", 3),
    "int64_batch_norm": INT64,
    "trunc_normal": TRUNC_NORMAL,
    "sinusoidal": SINUSOIDAL,
}

# Not bitwise across platforms (LAPACK's QR): pinned as values, within 1e-12 relative.
ORTHOGONAL_SPECS: dict[str, dict[str, Any]] = {
    "torch": {"seed": 11, "convention": "torch", "dtype": "float64",
              "layers": [_t("q", [3, 2, 2], {"name": "orthogonal", "gain": 1.5})]},
    "keras": {"seed": 11, "convention": "keras", "dtype": "float64",
              "layers": [_t("q", [2, 2, 3], "orthogonal")]},
}


def plan_of(body: dict[str, Any]) -> Plan:
    return build_plan(Spec.model_validate(body))


def digests(plan: Plan, **stream_options: Any) -> dict[str, str]:
    """sha256 of every tensor's bytes, of the data section, and of the whole file (whose
    header names no package version: the bytes depend on algorithm, spec and selection)."""
    header = header_bytes(plan, file_metadata(plan))
    data, whole = hashlib.sha256(), hashlib.sha256(header)
    tensors: dict[str, Any] = {}
    for chunk in ChunkStream(plan, **stream_options):
        tensors.setdefault(chunk.output.name, hashlib.sha256()).update(chunk.buffer)
        data.update(chunk.buffer)
        whole.update(chunk.buffer)
    out = {name: digest.hexdigest() for name, digest in tensors.items()}
    out["<data>"] = data.hexdigest()
    out["<file>"] = whole.hexdigest()
    return out


def orthogonal_values(body: dict[str, Any]) -> list[float]:
    plan = plan_of(body)
    return [float(v) for chunk in ChunkStream(plan) for v in np.asarray(chunk.data)]
