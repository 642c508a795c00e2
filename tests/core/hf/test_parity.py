"""Every supported family, against ``from_config`` of the installed transformers.

For each tiny config in ``hf_variants.VARIANTS``:
* the file has exactly the tensors (names, shapes) ``save_pretrained`` writes;
* ``from_pretrained`` on weightinit's directory reports no missing, unexpected or
  mismatched key, no error and no "newly initialized" warning, and the model's forward
  pass is finite;
* deterministic tensors (zeros, ones, constants, the sinusoidal table) equal
  ``from_config``'s: exactly, the sinusoidal table within the float32 rounding of the
  angle that transformers computes it with;
* every random tensor passes a two-sample Kolmogorov-Smirnov test against
  ``from_config``'s tensor of the same name.

Threshold: the suite makes fewer than ``MAX_KS_TESTS`` KS tests in all (checked), and
each rejects at ``P_THRESHOLD = FAMILY_ALPHA / MAX_KS_TESTS`` (Bonferroni): if every
distribution is right, the chance of any false alarm in the whole suite is at most
``FAMILY_ALPHA`` = 1 %. The two samples come from independent generators (torch's and
weightinit's Philox streams), so the test's null hypothesis is exactly "same law". Power:
a std off by a factor 1.5 on a 32 x 32 matrix gives D ~ 0.2, p ~ 1e-19, far below the
threshold; the rules that differ between families (std 0.02 vs 1, depth scaling, d_model
powers) differ by factors of 1.4 and more at these sizes. The worst p-value per family
goes to docs/huggingface.md.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from hf_variants import VARIANTS
from parity_helpers import Sides, build_sides, from_config_class, random_part
from scipy import stats
from weightinit.core.rng.samplers import ConstantSampler, SinusoidalSampler

FAMILY_ALPHA = 0.01
MAX_KS_TESTS = 2000
P_THRESHOLD = FAMILY_ALPHA / MAX_KS_TESTS
KS_COUNT: list[int] = []


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def sides(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Sides:
    variant = request.param
    return build_sides(variant, VARIANTS[variant], tmp_path_factory.mktemp(variant))


def test_tensor_names_and_shapes_are_save_pretrained_s(sides: Sides) -> None:
    ours = {name: array.shape for name, array in sides.ours.items()}
    theirs = {name: array.shape for name, array in sides.theirs.items()}
    assert ours == theirs


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def transformers_warnings() -> Iterator[list[str]]:
    handler = _Collect()
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


def _inputs(sides: Sides, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Small valid inputs for the family's forward pass."""
    config = model.config
    model_type = sides.config["model_type"]
    ids = torch.tensor([[3, 7, 1, 5, 9, 2]])
    if model_type == "vit":
        return {"pixel_values": torch.randn(1, 3, 32, 32)}
    if model_type == "clip":
        return {"input_ids": ids, "pixel_values": torch.randn(1, 3, 32, 32)}
    if model_type == "whisper":
        frames = 2 * config.max_source_positions
        return {"input_features": torch.randn(1, config.num_mel_bins, frames),
                "decoder_input_ids": ids}
    if model_type == "t5":
        return {"input_ids": ids, "decoder_input_ids": ids}
    return {"input_ids": ids}


def test_from_pretrained_loads_everything_and_runs(sides: Sides,
                                                   transformers_warnings: list[str]) -> None:
    cls = from_config_class(sides.config)
    model, info = cls.from_pretrained(sides.ours_dir, output_loading_info=True)
    assert {key: list(value) for key, value in info.items()} == {
        "missing_keys": [], "unexpected_keys": [], "mismatched_keys": [], "error_msgs": []}
    assert not [m for m in transformers_warnings if "newly initialized" in m]
    # Ties hold after loading (one parameter behind both names).
    state = model.state_dict()
    for target, source in getattr(model, "all_tied_weights_keys", {}).items():
        if target in state and source in state:
            assert state[target].data_ptr() == state[source].data_ptr()
    model.eval()
    with torch.no_grad():
        output = model(**_inputs(sides, model))
    tensors = [v for v in output.values() if isinstance(v, torch.Tensor)]
    assert tensors and all(torch.isfinite(t).all() for t in tensors)


def test_deterministic_tensors_equal_from_config_s(sides: Sides) -> None:
    checked = 0
    for output in sides.plan.outputs:
        sampler = output.plan.init.sampler
        ours, theirs = sides.ours[output.name], sides.theirs[output.name]
        if isinstance(sampler, ConstantSampler) and not output.plan.overrides:
            np.testing.assert_array_equal(ours, theirs, err_msg=output.name)
            checked += 1
        elif isinstance(sampler, SinusoidalSampler):
            # transformers rounds the angle t * f to float32: |error| <= t * 2**-23 radians.
            rows = np.arange(ours.shape[0], dtype=np.float64)[:, None]
            bound = (rows + 1) * 2.0**-22 + 2.0**-22
            assert np.all(np.abs(ours - theirs) <= bound), output.name
            checked += 1
        for override in output.plan.overrides:  # e.g. the zeroed padding row
            flat_ours, flat_theirs = ours.reshape(-1), theirs.reshape(-1)
            np.testing.assert_array_equal(flat_ours[override.start : override.stop],
                                          flat_theirs[override.start : override.stop])
    assert checked  # every family here has norms


def test_random_tensors_follow_from_config_s_law(sides: Sides) -> None:
    results = []
    for output in sides.plan.outputs:
        if isinstance(output.plan.init.sampler, (ConstantSampler, SinusoidalSampler)):
            continue
        ours = random_part(output.plan, sides.ours[output.name])
        theirs = random_part(output.plan, sides.theirs[output.name])
        p_value = stats.ks_2samp(ours, theirs).pvalue
        results.append((p_value, output.name, output.plan.init.config))
    KS_COUNT.append(len(results))
    assert sum(KS_COUNT) <= MAX_KS_TESTS
    assert results
    failures = [r for r in results if not r[0] >= P_THRESHOLD]
    assert not failures, failures
    worst = min(results)
    print(f"PARITY {sides.variant}: {len(results)} KS tests, worst p = {worst[0]:.3g} "
          f"({worst[1]})")
    assert math.isfinite(worst[0])


def test_the_ks_threshold_rejects_a_std_off_by_half(sides: Sides) -> None:
    """Power check: the same comparison on from_config's largest random tensor scaled by
    1.5 (a std 50 % off) is rejected, so the parity test above can fail."""
    randoms = [o for o in sides.plan.outputs
               if not isinstance(o.plan.init.sampler, (ConstantSampler, SinusoidalSampler))]
    largest = max(randoms, key=lambda o: o.numel)
    ours = random_part(largest.plan, sides.ours[largest.name])
    theirs = random_part(largest.plan, sides.theirs[largest.name])
    assert stats.ks_2samp(ours, 1.5 * theirs).pvalue < P_THRESHOLD
