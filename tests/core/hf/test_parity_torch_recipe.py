"""``init_recipe: "torch"``: every tensor as the modules' own constructors leave it.

The reference is the same transformers class built on the CPU with the family's
``initialize_weights`` switched off, so each parameter keeps what its module's
``__init__`` / ``reset_parameters`` gave it (``nn.Linear``'s kaiming-uniform weight and
fan-in bias, ``nn.Embedding``'s N(0, 1) with the padding row zeroed, norm weights ones,
``torch.randn`` class tokens...); ties are still applied, as ``init_weights`` does.

For each tiny config of ``hf_variants.VARIANTS``: the same tensor names and shapes;
constants and overridden rows (padding) exactly equal; every random tensor passes a
two-sample Kolmogorov-Smirnov test against the reference's tensor of the same name.
Threshold as in ``test_parity.py``: fewer than ``MAX_KS_TESTS`` tests in this module
(checked), each at ``FAMILY_ALPHA / MAX_KS_TESTS`` (Bonferroni), so the chance of any
false alarm in the module is at most 1 % when every law is right; the two samples come
from independent generators, so the null hypothesis is exactly "same law". Power: the
family rules (N(0, 0.02)) and torch's defaults (U(+-1/sqrt(fan_in)), std 0.10 for a
fan-in of 32; N(0, 1) embeddings) differ by factors of 5 and more, and a std 50 % off is
rejected (checked on each variant's largest tensor).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
import transformers
from hf_variants import VARIANTS
from parity_helpers import from_config_class, hf_config, random_part
from scipy import stats
from weightinit.core import Plan, Spec, build_plan, write_file
from weightinit.core.rng.samplers import ConstantSampler

FAMILY_ALPHA = 0.01
MAX_KS_TESTS = 2000
P_THRESHOLD = FAMILY_ALPHA / MAX_KS_TESTS
SEED = 20261205
KS_COUNT: list[int] = []


@dataclass
class TorchSides:
    plan: Plan
    ours: dict[str, np.ndarray]
    theirs: dict[str, np.ndarray]


def _constructor_model(config: dict) -> torch.nn.Module:
    """The model with the modules' constructor values: ``initialize_weights`` off."""
    cls = from_config_class(config)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(transformers.PreTrainedModel, "initialize_weights", lambda self: None)
        torch.manual_seed(SEED)
        if config.get("architectures"):
            return cls._from_config(hf_config(config))
        return cls.from_config(hf_config(config))


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def sides(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> TorchSides:
    from safetensors.numpy import load_file

    config = VARIANTS[request.param]
    root = tmp_path_factory.mktemp(request.param)
    _constructor_model(config).save_pretrained(root / "reference")
    theirs = load_file(root / "reference" / "model.safetensors")
    plan = build_plan(Spec.model_validate(
        {"seed": SEED, "dtype": "float32",
         "huggingface": {"config": config, "init_recipe": "torch"}}))
    write_file(plan, root / "ours.safetensors")
    return TorchSides(plan, load_file(root / "ours.safetensors"), theirs)


def test_names_and_shapes_are_save_pretrained_s(sides: TorchSides) -> None:
    assert ({n: a.shape for n, a in sides.ours.items()}
            == {n: a.shape for n, a in sides.theirs.items()})


def test_constants_and_overridden_rows_equal_the_constructors(sides: TorchSides) -> None:
    checked = 0
    for output in sides.plan.outputs:
        ours, theirs = sides.ours[output.name], sides.theirs[output.name]
        if isinstance(output.plan.init.sampler, ConstantSampler) and not output.plan.overrides:
            np.testing.assert_array_equal(ours, theirs, err_msg=output.name)
            checked += 1
        for override in output.plan.overrides:
            np.testing.assert_array_equal(ours.reshape(-1)[override.start : override.stop],
                                          theirs.reshape(-1)[override.start : override.stop],
                                          err_msg=output.name)
    assert checked


def test_random_tensors_follow_the_constructors_law(sides: TorchSides) -> None:
    results = []
    for output in sides.plan.outputs:
        if isinstance(output.plan.init.sampler, ConstantSampler):
            continue
        ours = random_part(output.plan, sides.ours[output.name])
        theirs = random_part(output.plan, sides.theirs[output.name])
        results.append((stats.ks_2samp(ours, theirs).pvalue, output.name))
    KS_COUNT.append(len(results))
    assert sum(KS_COUNT) <= MAX_KS_TESTS
    assert results
    failures = [r for r in results if not r[0] >= P_THRESHOLD]
    assert not failures, failures


def test_the_threshold_rejects_a_std_off_by_half(sides: TorchSides) -> None:
    randoms = [o for o in sides.plan.outputs
               if not isinstance(o.plan.init.sampler, ConstantSampler)]
    largest = max(randoms, key=lambda o: o.numel)
    ours = random_part(largest.plan, sides.ours[largest.name])
    theirs = random_part(largest.plan, sides.theirs[largest.name])
    assert stats.ks_2samp(ours, 1.5 * theirs).pvalue < P_THRESHOLD
