"""Which Hugging Face families weightinit initializes, and the arithmetic that refuses a
hostile config before anything is built.

Every family listed here has been traced and checked tensor by tensor against
``from_config`` of the installed transformers (tests/core/hf/test_parity.py). Others are
refused, with the supported list and the ``layers`` route in the message: a family's own
init can hold rules weightinit has no initializer for, and a guess would be silent.

The size check reads only the request's numbers: a lower bound of the model's tensors
and parameters from its layer counts, widths and table sizes (every layer of these
families has at least two norm vectors and an MLP of ``hidden x intermediate``), compared
with the request limits. A config of 10**9 layers or a vocabulary of 10**12 is refused in
microseconds, with no module built and no memory spent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from weightinit.core.errors import LimitError, Loc, SpecError

CONFIG_LOC: Loc = ("huggingface", "config")
# Any integer of a config (sizes, ids, counts) above this is not a real model's: refused
# before the number reaches transformers or an allocation.
MAX_CONFIG_INT = 2**31 - 1
# Position tables and position-id buffers are allocated while tracing (BERT's
# position_ids, Whisper's sinusoids): their length is capped, and a computed table at
# MAX_TABLE_ELEMENTS (64 MiB of float32).
MAX_POSITIONS = 1 << 20
MAX_TABLE_ELEMENTS = 1 << 24
MAX_CONFIG_DEPTH = 8
# Keys that would make transformers run or fetch code or change what the weights are.
REFUSED_KEYS = {
    "auto_map": "remote code (auto_map) is never run: only model classes shipped with "
    "transformers are built",
    "quantization_config": "quantized models are not initialized here: their weights are "
    "not floating-point tensors",
}


@dataclass(frozen=True)
class Family:
    """Where a family's config keeps the numbers the size check reads."""

    layers: tuple[str, ...]
    hidden: str
    ffn: tuple[str, ...]
    vocab: str | None = "vocab_size"
    positions: tuple[str, ...] = ()
    computed_tables: tuple[str, ...] = ()  # positions whose table is computed, not drawn
    patches: bool = False  # a vision tower: (image_size // patch_size)**2 positions
    sub_configs: tuple[str, ...] = ()
    ffn_default: int = 0  # multiple of hidden when the ffn key is null (GPT-2's n_inner)


_DECODER = Family(("num_hidden_layers",), "hidden_size", ("intermediate_size",),
                  positions=())
_ENCODER = Family(("num_hidden_layers",), "hidden_size", ("intermediate_size",),
                  positions=("max_position_embeddings",))

FAMILIES: dict[str, Family] = {
    "llama": _DECODER,
    "mistral": _DECODER,
    "qwen2": _DECODER,
    "qwen3": _DECODER,
    "gemma": _DECODER,
    "phi3": _DECODER,
    "gpt_neox": _DECODER,
    "gpt2": Family(("n_layer",), "n_embd", ("n_inner",), positions=("n_positions",),
                   ffn_default=4),
    "bert": _ENCODER,
    "roberta": _ENCODER,
    "t5": Family(("num_layers", "num_decoder_layers"), "d_model", ("d_ff",)),
    "vit": Family(("num_hidden_layers",), "hidden_size", ("intermediate_size",), vocab=None,
                  patches=True),
    "clip": Family((), "projection_dim", (), vocab=None,
                   sub_configs=("text_config", "vision_config")),
    "whisper": Family(("encoder_layers", "decoder_layers"), "d_model",
                      ("encoder_ffn_dim", "decoder_ffn_dim"),
                      positions=("max_source_positions", "max_target_positions"),
                      computed_tables=("max_source_positions",)),
}
# The towers of a composite family, checked with their own keys.
SUB_FAMILIES: dict[tuple[str, str], Family] = {
    ("clip", "text_config"): _ENCODER,
    ("clip", "vision_config"): Family(("num_hidden_layers",), "hidden_size",
                                      ("intermediate_size",), vocab=None, patches=True),
}
SUPPORTED_FAMILIES: tuple[str, ...] = tuple(FAMILIES)


def unsupported_family_message(model_type: object) -> str:
    return (
        f"model_type {model_type!r} has no initialization rules in weightinit; supported "
        f"families: {', '.join(SUPPORTED_FAMILIES)}. For another model, describe its "
        "tensors with a 'layers' spec (or a 'keras_model')"
    )


def check_raw_config(config: dict[str, Any]) -> str:
    """The family of a request's config, after the checks that need no transformers:
    a supported ``model_type``, no remote code, no absurd integer anywhere."""
    model_type = config.get("model_type")
    if not isinstance(model_type, str):
        raise SpecError((*CONFIG_LOC, "model_type"),
                        "a Hugging Face config needs its model_type (e.g. 'llama')")
    if model_type not in FAMILIES:
        raise SpecError((*CONFIG_LOC, "model_type"), unsupported_family_message(model_type))
    for loc, key, value in _walk(config, CONFIG_LOC, 0):
        if key in REFUSED_KEYS:
            raise SpecError(loc, REFUSED_KEYS[key])
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_CONFIG_INT:
            raise LimitError(loc, f"{value} is larger than any model's ({MAX_CONFIG_INT} at most)")
    return model_type


def _walk(value: Any, loc: Loc, depth: int) -> Iterator[tuple[Loc, str, Any]]:
    """Every (location, key, value) of a JSON object, nested objects and lists included."""
    if depth > MAX_CONFIG_DEPTH:
        raise SpecError(loc, f"nested deeper than {MAX_CONFIG_DEPTH}")
    items: Any = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        yield (*loc, key), str(key), item
        if isinstance(item, (dict, list)):
            yield from _walk(item, (*loc, key), depth + 1)


@dataclass
class SizeBound:
    """Lower bounds of a model's tensor and parameter counts."""

    tensors: int = 0
    parameters: int = 0


def _size(config: dict[str, Any], key: str, loc: Loc, default: int = 0) -> int:
    value = config.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError((*loc, key), f"expected an integer, got {type(value).__name__}")
    if value < 0:
        raise SpecError((*loc, key), "must not be negative")
    return value


def size_lower_bound(model_type: str, config: dict[str, Any]) -> SizeBound:
    """What a config certainly asks for (``config``: the instantiated config's
    ``to_dict()``, defaults filled in). Raises for position tables too long to trace."""
    return _bound(FAMILIES[model_type], model_type, config, CONFIG_LOC)


def _bound(family: Family, model_type: str, config: dict[str, Any], loc: Loc) -> SizeBound:
    bound = SizeBound()
    for sub in family.sub_configs:
        sub_config = config.get(sub)
        if isinstance(sub_config, dict):
            part = _bound(SUB_FAMILIES[(model_type, sub)], model_type, sub_config, (*loc, sub))
            bound.tensors += part.tensors
            bound.parameters += part.parameters
    hidden = _size(config, family.hidden, loc)
    layers = sum(_size(config, key, loc) for key in family.layers)
    ffn = max((_size(config, key, loc) for key in family.ffn), default=0)
    if not ffn and family.ffn_default:
        ffn = family.ffn_default * hidden
    per_layer = 2 * hidden + hidden * ffn
    bound.tensors += 4 * layers  # two norms and two MLP matrices at least
    bound.parameters += layers * per_layer
    if family.vocab:
        bound.parameters += _size(config, family.vocab, loc) * hidden
    for key in family.positions:
        positions = _size(config, key, loc)
        if positions > MAX_POSITIONS:
            raise LimitError((*loc, key), f"{positions} positions, more than the "
                             f"{MAX_POSITIONS} weightinit traces")
        if key in family.computed_tables and positions * hidden > MAX_TABLE_ELEMENTS:
            raise LimitError((*loc, key), f"a computed {positions} x {hidden} table is larger "
                             f"than the {MAX_TABLE_ELEMENTS} elements weightinit traces")
        bound.parameters += positions * hidden
    if family.patches:
        image, patch = _size(config, "image_size", loc), _size(config, "patch_size", loc, 1)
        side = image // max(patch, 1)
        if side * side > MAX_POSITIONS:
            raise LimitError((*loc, "image_size"), f"{side * side} patches, more than the "
                             f"{MAX_POSITIONS} positions weightinit traces")
        bound.parameters += side * side * hidden
    return bound


def check_size(model_type: str, config: dict[str, Any], max_tensors: int,
               max_parameters: int) -> None:
    """Refuse a config whose certain size passes the request limits (HTTP 413)."""
    bound = size_lower_bound(model_type, config)
    if bound.tensors > max_tensors:
        raise LimitError(CONFIG_LOC, f"this config has at least {bound.tensors} tensors, more "
                         f"than the limit {max_tensors}")
    if bound.parameters > max_parameters:
        raise LimitError(CONFIG_LOC, f"this config has at least {bound.parameters} "
                         f"parameters, more than the limit {max_parameters}")
