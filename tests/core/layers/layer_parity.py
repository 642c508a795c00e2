"""Shared helpers of the layer parity tests: our tensors next to torch's and Keras' own.

Samples are stacked per seed, shape ``(seeds, *tensor_shape)``, on both sides. Positions
whose value is the same for every seed of the framework (constants, padding rows, Keras'
forget-gate bias) must hold exactly that value in ours; the remaining positions are
pooled and compared with two two-sample tests: Kolmogorov-Smirnov (any difference in
shape or location) and Brown-Forsythe (Levene's test around the median: a difference in
spread, where KS is weak; most initializer mistakes are a wrong scale).

Threshold: ``ALPHA = 1e-6`` per test. These modules run fewer than 300 tensors, two tests
each, so the chance that a correct implementation fails any of them is below
600 * 1e-6 = 0.06 %; every seed is fixed, so a result is reproducible run to run. With
about 5,000 values a side, KS rejects a CDF gap of 0.054 (a uniform bound off by 6 %), and
Brown-Forsythe a normal's std off by 10 % (z about 6).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from weightinit.core import ChunkStream, Spec, build_plan, write_file

os.environ.setdefault("KERAS_BACKEND", "torch")  # as conftest.py: no TensorFlow here

ALPHA = 1e-6
TARGET_VALUES = 5000


def spec_of(convention: str, layers: list[dict[str, Any]], seed: int = 0, **extra: Any) -> Spec:
    return Spec.model_validate({"seed": seed, "convention": convention, "layers": layers, **extra})


def generate(spec: Spec) -> dict[str, np.ndarray]:
    """Every tensor of the spec, generated in-process by the engine, in its shape."""
    plan = build_plan(spec)
    parts: dict[str, list[np.ndarray]] = {}
    for chunk in ChunkStream(plan):
        parts.setdefault(chunk.output.name, []).append(chunk.data)
    return {
        output.name: np.concatenate(parts[output.name]).reshape(output.shape)
        for output in plan.outputs
    }


def write_and_load_torch(spec: Spec, directory: Path) -> dict[str, Any]:
    """Write the spec's file with ``write_file`` and load it with safetensors.torch."""
    from safetensors.torch import load_file

    path = directory / "weights.safetensors"
    write_file(build_plan(spec), path)
    return load_file(str(path))


def holder(name: str, module: Any) -> Any:
    """A torch module with ``module`` as its attribute ``name`` (state-dict prefix)."""
    import torch

    parent = torch.nn.Module()
    parent.add_module(name, module)
    return parent


def assert_loads_strictly(spec: Spec, module: Any, directory: Path) -> None:
    """The spec's file, read by safetensors.torch, has the module's state-dict names,
    shapes and dtypes, and ``load_state_dict(strict=True)`` takes it."""
    loaded = write_and_load_torch(spec, directory)
    expected = {k: (tuple(v.shape), v.dtype) for k, v in module.state_dict().items()}
    assert {k: (tuple(v.shape), v.dtype) for k, v in loaded.items()} == expected
    module.load_state_dict(loaded, strict=True)


def seed_count(numel: int) -> int:
    """Seeds to pool so that a tensor of ``numel`` values gives about TARGET_VALUES."""
    return max(3, min(200, math.ceil(TARGET_VALUES / max(1, numel))))


def stacked(per_seed: Iterable[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-seed dicts of tensors -> one dict of ``(seeds, *shape)`` float64 arrays."""
    collected: dict[str, list[np.ndarray]] = {}
    for tensors in per_seed:
        for name, values in tensors.items():
            collected.setdefault(name, []).append(np.asarray(values, dtype=np.float64))
    return {name: np.stack(values) for name, values in collected.items()}


def ours_stacked(
    convention: str, layers: list[dict[str, Any]], seeds: int
) -> dict[str, np.ndarray]:
    """The engine's tensors of the spec under seeds 0 .. seeds-1, stacked."""
    return stacked(generate(spec_of(convention, layers, seed)) for seed in range(seeds))


def torch_stacked(factory: Callable[[], Any], seeds: int) -> dict[str, np.ndarray]:
    """``state_dict()`` of ``factory()`` built under torch seeds 0 .. seeds-1."""
    import torch

    def one(seed: int) -> dict[str, np.ndarray]:
        torch.manual_seed(seed)
        module = factory()
        return {k: v.detach().double().numpy() for k, v in module.state_dict().items()}

    return stacked(one(seed) for seed in range(seeds))


def assert_same_distribution(name: str, ours: np.ndarray, reference: np.ndarray) -> None:
    """Fixed positions equal exactly; the random rest passes a KS test at ``ALPHA``."""
    assert ours.shape[1:] == reference.shape[1:], name
    fixed = np.all(reference == reference[0], axis=0)
    np.testing.assert_array_equal(
        ours[:, fixed], np.broadcast_to(reference[0][fixed], ours[:, fixed].shape),
        err_msg=f"{name}: deterministic positions differ",
    )
    if fixed.all():
        return
    # Our random positions must be random too (never fixed across seeds).
    assert not np.all(ours == ours[0], axis=0)[~fixed].any(), f"{name}: constant where random"
    ours_random, reference_random = ours[:, ~fixed].ravel(), reference[:, ~fixed].ravel()
    sizes = f"({ours_random.size} vs {reference_random.size} values)"
    shape = stats.ks_2samp(ours_random, reference_random)
    assert shape.pvalue > ALPHA, (
        f"{name}: KS statistic {shape.statistic:.4f}, p = {shape.pvalue:.2e} {sizes}"
    )
    spread = stats.levene(ours_random, reference_random, center="median")
    assert spread.pvalue > ALPHA, (
        f"{name}: spread differs (std {ours_random.std():.4g} vs "
        f"{reference_random.std():.4g}), Brown-Forsythe p = {spread.pvalue:.2e} {sizes}"
    )


def assert_all_same_distribution(
    ours: dict[str, np.ndarray], reference: dict[str, np.ndarray]
) -> None:
    assert sorted(ours) == sorted(reference)
    for name in reference:
        assert_same_distribution(name, ours[name], reference[name])


def min_numel(shapes: Iterable[tuple[int, ...]]) -> int:
    return min(math.prod(shape) for shape in shapes)


# ------------------------------------------------------------------------ keras ----


def keras_weights(build: Callable[[], Any]) -> dict[str, np.ndarray]:
    """``{path: value}`` of the model ``build()`` returns, model-name prefix stripped."""
    import keras

    model = build()
    prefix = f"{model.name}/"
    return {
        w.path.removeprefix(prefix): np.asarray(keras.ops.convert_to_numpy(w))
        for w in model.weights
    }


def keras_stacked(build: Callable[[], Any], seeds: int) -> dict[str, np.ndarray]:
    """Keras' own initial weights of ``build()`` under ``set_random_seed(0 .. seeds-1)``."""
    import keras

    def one(seed: int) -> dict[str, np.ndarray]:
        keras.utils.set_random_seed(seed)
        return keras_weights(build)

    return stacked(one(seed) for seed in range(seeds))


def keras_signature(build: Callable[[], Any]) -> dict[str, tuple[tuple[int, ...], str]]:
    """``{path: (shape, dtype)}`` of a Keras model's weights, prefix stripped."""
    import keras

    model = build()
    prefix = f"{model.name}/"
    return {
        w.path.removeprefix(prefix): (tuple(w.shape), keras.backend.standardize_dtype(w.dtype))
        for w in model.weights
    }


def our_signature(spec: Spec) -> dict[str, tuple[tuple[int, ...], str]]:
    return {o.name: (tuple(o.shape), o.plan.dtype) for o in build_plan(spec).outputs}
