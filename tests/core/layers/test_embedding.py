"""``embedding`` against torch's ``nn.Embedding`` and Keras' ``Embedding``."""

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
    seed_count,
    spec_of,
    torch_stacked,
)
from weightinit.core import SpecError, build_plan, plan_document

VOCAB, DIM = 40, 12
SEEDS = seed_count(VOCAB * DIM)


def _layer(**extra):
    return {"type": "embedding", "name": "emb", "num_embeddings": VOCAB,
            "embedding_dim": DIM, **extra}


def _torch_module(padding_idx=None):
    return holder("emb", torch.nn.Embedding(VOCAB, DIM, padding_idx=padding_idx))


@pytest.mark.parametrize("padding_idx", [None, 3, -1])
def test_torch_embedding_loads_strictly_with_torch_names_and_dtypes(tmp_path, padding_idx):
    assert_loads_strictly(spec_of("torch", [_layer(padding_idx=padding_idx)]),
                          _torch_module(padding_idx), tmp_path)


@pytest.mark.parametrize("padding_idx", [None, 3, -1])
def test_torch_embedding_matches_torch_default_distribution(padding_idx):
    ours = ours_stacked("torch", [_layer(padding_idx=padding_idx)], SEEDS)
    reference = torch_stacked(lambda: _torch_module(padding_idx), SEEDS)
    assert_all_same_distribution(ours, reference)
    if padding_idx is not None:  # the padding row is zero and the others are not
        assert not ours["emb.weight"][:, padding_idx].any()


def _keras_model():
    return keras.Sequential(
        [keras.Input((5,), dtype="int32"), keras.layers.Embedding(VOCAB, DIM, name="emb")],
        name="model",
    )


def test_keras_embedding_has_keras_weight_paths():
    assert our_signature(spec_of("keras", [_layer()])) == keras_signature(_keras_model)


def test_keras_embedding_matches_keras_default_distribution():
    assert_all_same_distribution(
        ours_stacked("keras", [_layer()], SEEDS), keras_stacked(_keras_model, SEEDS)
    )


def test_embedding_init_and_dtype_overrides_reach_the_plan():
    spec = spec_of("torch", [_layer(
        padding_idx=0, dtype="bfloat16", embedding_init={"name": "normal", "std": 0.02},
    )])
    (tensor,) = plan_document(build_plan(spec))["tensors"]
    assert tensor["dtype"] == "bfloat16"
    assert tensor["initializer"] == {"name": "normal", "mean": 0.0, "std": 0.02}
    assert tensor["overrides"] == [{"start": 0, "stop": DIM, "value": 0.0}]
    # One row of VOCAB is zero: the variance is the normal's times (VOCAB - 1) / VOCAB.
    assert tensor["expected_variance"] == pytest.approx(0.02**2 * (VOCAB - 1) / VOCAB)


def test_padding_idx_zeroes_the_row_under_keras_too():
    ours = ours_stacked("keras", [_layer(padding_idx=2)], 2)["emb/embeddings"]
    assert not ours[:, 2].any() and np.all(ours[:, 3] != 0)


@pytest.mark.parametrize("padding_idx", [VOCAB, -VOCAB - 1])
def test_padding_idx_out_of_range_is_a_spec_error(padding_idx):
    with pytest.raises(SpecError) as caught:
        build_plan(spec_of("torch", [_layer(padding_idx=padding_idx)]))
    assert caught.value.loc[-1] == "padding_idx"
