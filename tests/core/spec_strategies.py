"""Hypothesis strategies for hostile request bodies, and what "names a field" means.

Bodies are either arbitrary JSON or valid specs (every layer type, both conventions,
select and shard) with a few mutations at random places: a value replaced by any JSON
or by a boundary number, a key removed or added, a list item duplicated or dropped.
Mutations of valid specs reach the deep checks (fans, names, limits) that random JSON
almost never gets past the schema to see.
"""

from __future__ import annotations

import copy
from typing import Any

from golden_specs import GOLDEN_SPECS
from hypothesis import strategies as st

BOUNDARY_NUMBERS = [0, -1, 1, 2, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64,
                    10**40, -(2**63), 0.5, -0.0, 1e-320, 1e308, -1e308, True, False]

LAYER_TYPES = {
    "seed": 77,
    "convention": "torch",
    "dtype": "bfloat16",
    "layers": [
        {"type": "embedding", "name": "emb", "num_embeddings": 50, "embedding_dim": 8,
         "padding_idx": 0},
        {"type": "layer_norm", "name": "ln", "normalized_shape": [8]},
        {"type": "rms_norm", "name": "rms", "normalized_shape": 8},
        {"type": "group_norm", "name": "gn", "num_groups": 2, "num_channels": 8},
        {"type": "batch_norm", "name": "bn", "num_features": 8},
        {"type": "lstm", "name": "lstm", "input_size": 8, "hidden_size": 4, "num_layers": 2,
         "bidirectional": True},
        {"type": "gru", "name": "gru", "input_size": 8, "hidden_size": 4},
        {"type": "multihead_attention", "name": "attn", "embed_dim": 8, "num_heads": 2},
        {"type": "conv3d", "name": "c3", "in_channels": 2, "out_channels": 4,
         "kernel_size": [1, 2, 3], "dtype": "float16"},
        {"type": "repeat", "name": "blocks", "count": 3, "layers": [
            {"type": "linear", "name": "fc", "in_features": 8, "out_features": 8,
             "weight_init": {"name": "orthogonal", "gain": 1.0}}]},
    ],
    "select": ["emb.weight", "blocks.2.fc.weight", "lstm.weight_ih_l1_reverse"],
    "shard": {"dim": 0, "rank": 1, "world_size": 2},
}
KERAS_LAYERS = {**copy.deepcopy(LAYER_TYPES), "convention": "keras", "select": None,
                "shard": None}
BASE_SPECS: list[dict[str, Any]] = [*GOLDEN_SPECS.values(), LAYER_TYPES, KERAS_LAYERS]

json_leaves = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats()
               | st.text(max_size=12) | st.sampled_from(BOUNDARY_NUMBERS))
json_values = st.recursive(
    json_leaves,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=16,
)


def _places(node: Any, path: tuple = ()) -> list[tuple]:
    """Every path to a value inside ``node`` (the root excluded)."""
    found = []
    children = (node.items() if isinstance(node, dict)
                else enumerate(node) if isinstance(node, list) else ())
    for key, child in children:
        found.append((*path, key))
        found.extend(_places(child, (*path, key)))
    return found


def _parent(document: Any, path: tuple) -> Any:
    for part in path[:-1]:
        document = document[part]
    return document


@st.composite
def mutated_specs(draw: st.DrawFn) -> Any:
    """A valid spec with one to three mutations."""
    document = copy.deepcopy(draw(st.sampled_from(BASE_SPECS)))
    for _ in range(draw(st.integers(1, 3))):
        places = _places(document)
        if not places:
            break
        path = draw(st.sampled_from(places))
        parent, key = _parent(document, path), path[-1]
        action = draw(st.sampled_from(["replace", "boundary", "remove", "add", "duplicate"]))
        if action == "replace":
            parent[key] = draw(json_values)
        elif action == "boundary":
            parent[key] = draw(st.sampled_from(BOUNDARY_NUMBERS))
        elif action == "remove":
            del parent[key]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(json_values)
        elif action == "duplicate" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
    return document


hostile_bodies = json_values | mutated_specs()


def resolve_loc(loc: tuple | list, document: Any, missing_ok: bool = True) -> list | None:
    """The path ``loc`` names in ``document``, without validation-union tags; ``None``
    if it does not name a place in it.

    A string that is not a key of the object reached (or that meets a non-container) is
    a tag (a layer type, an initializer name, a union member such as ``list[int]``), and
    is dropped, unless it is the last part and ``missing_ok``: a field absent from the
    body (a missing required one, or the one an engine error is about). An index must
    point into a list.
    """
    path: list = []
    node = document
    for position, part in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(part, int) and not isinstance(part, bool):
            if not (isinstance(node, list) and 0 <= part < len(node)):
                return None
            path.append(part)
            node = node[part]
        elif isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, dict) and last and missing_ok:
            path.append(part)
        # else: a union tag, dropped
    return path
