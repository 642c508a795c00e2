"""A Keras model's ``to_json()`` object as the tensors Keras would create for it.

Walks a Sequential or Functional model (nested models and the ``Bidirectional`` and
``TimeDistributed`` wrappers included), finds each layer's build-time input shape
(``build_config``, an ``InputLayer``, the shapes recorded on a call, or propagated with
``core.keras_shapes``) and plans its weights with ``core.keras_layers``. No keras import.

Names are the ``variable.path``s of ``keras.models.model_from_json(...)``, which follow
where Keras builds each layer (its name scope at that moment):

* a layer saved with a ``build_config`` is built while it is deserialized, outside any
  scope: ``<layer>/<weight>``, however deeply it is nested (``dense/kernel``, also
  inside a nested model or as a Bidirectional's ``forward_lstm/lstm_cell/kernel``);
* a layer without one is built on its first call, under the scope of its caller: a
  Sequential builds its layers under ``<sequential>/`` (a Sequential that knows its input
  shape is built when deserialized, at the top; one that does not, when its parent calls
  it, under the parent's scope); a Functional calls its layers while it is deserialized,
  at the top; a wrapper builds its inner layer under ``<wrapper>/``.

A layer class not known here is an error naming the layer and its class, never a skip.
"""

from __future__ import annotations

from typing import Any

from weightinit.core.errors import Loc, SpecError
from weightinit.core.keras.layers import BUILDERS, KerasLayer
from weightinit.core.keras.shapes import (
    KNOWN_WEIGHTLESS,
    Call,
    Output,
    Shape,
    as_shape,
    output_shape,
)
from weightinit.core.layers.base import TensorPlan

_MODELS = ("Sequential", "Functional", "Model")
_WRAPPERS = ("Bidirectional", "TimeDistributed")
_RNNS = ("LSTM", "GRU", "SimpleRNN")
_STORED = {"float16", "bfloat16", "float64"}  # variable dtypes kept as the model has them
SUPPORTED_LAYERS = tuple(sorted({*BUILDERS, *_WRAPPERS}))


def import_keras_model(
    model: dict[str, Any], dtype: str, max_depth: int, warnings: list[str]
) -> list[TensorPlan]:
    """Every weight of the model, in Keras' order, named by its ``model_from_json`` path.

    ``dtype`` is the file's dtype for float32 variables; layers whose dtype policy keeps
    float16, bfloat16 or float64 variables keep that dtype. Seeds found in initializer
    configs are appended to ``warnings``.
    """
    importer = _Importer(dtype, max_depth)
    plans, _ = importer.model(model, ("keras_model",), "", None, 0)
    for message in dict.fromkeys(importer.warnings):
        warnings.append(message)
    return plans


def _config(obj: Any, loc: Loc) -> tuple[str, dict[str, Any]]:
    if not isinstance(obj, dict) or not isinstance(obj.get("class_name"), str):
        raise SpecError(loc, "expected a Keras object with class_name and config")
    config = obj.get("config")
    if not isinstance(config, dict):
        raise SpecError((*loc, "config"), "expected an object")
    return obj["class_name"], config


def _build_shapes(obj: dict[str, Any]) -> dict[str, Shape | None] | None:
    """The shapes a layer's ``build_config`` records, or ``None`` if it has none."""
    build = obj.get("build_config")
    if not isinstance(build, dict):
        return None
    if "input_shape" in build:
        return {"input_shape": as_shape(build["input_shape"])}
    if isinstance(build.get("shapes_dict"), dict):
        return {key: as_shape(value) for key, value in build["shapes_dict"].items()}
    return None


def _input_layer_shape(config: dict[str, Any]) -> Shape | None:
    for key in ("batch_shape", "batch_input_shape"):
        if config.get(key) is not None:
            return as_shape(config[key])
    shape = as_shape(config.get("shape"))
    return None if shape is None else (config.get("batch_size"), *shape)


def _is_history(ref: Any) -> bool:
    """A ``[layer name, node index, tensor index]`` reference."""
    return (isinstance(ref, list) and len(ref) == 3 and isinstance(ref[0], str)
            and all(isinstance(i, int) and not isinstance(i, bool) for i in ref[1:]))


def _first(output: Output) -> Shape | None:
    return output[0] if isinstance(output, list) else output


class _Importer:
    """One model's import: the request's dtype and nesting limit, and the warnings met."""

    def __init__(self, dtype: str, max_depth: int) -> None:
        self.dtype = dtype
        self.max_depth = max_depth
        self.warnings: list[str] = []

    # ------------------------------------------------------------------ models ----

    def model(
        self, obj: Any, loc: Loc, scope: str, call: Call | None, depth: int
    ) -> tuple[list[TensorPlan], Output]:
        class_name, config = _config(obj, loc)
        if depth > self.max_depth:
            raise SpecError(loc, f"models nested deeper than {self.max_depth}")
        if class_name == "Sequential":
            return self.sequential(obj, config, loc, scope, call, depth)
        if class_name in ("Functional", "Model") and isinstance(config.get("layers"), list):
            return self.functional(config, loc, depth)
        raise SpecError(
            (*loc, "class_name"),
            f"expected a Sequential or Functional model, got {class_name!r}",
        )

    def sequential(self, obj: dict[str, Any], config: dict[str, Any], loc: Loc, scope: str,
                   call: Call | None, depth: int) -> tuple[list[TensorPlan], Output]:
        layers = config.get("layers")
        if not isinstance(layers, list):
            raise SpecError((*loc, "config", "layers"), "expected a list of layers")
        has_input = bool(layers) and isinstance(layers[0], dict) and (
            layers[0].get("class_name") == "InputLayer")
        recorded = as_shape(config.get("build_input_shape")) or (
            (_build_shapes(obj) or {}).get("input_shape"))
        if has_input:
            shape = _input_layer_shape(_config(layers[0], (*loc, "config", "layers", 0))[1])
        else:
            shape = recorded or (call.first if call else None)
        # Built while deserialized (at the top) if it knows its input shape, else when its
        # parent calls it (under the parent's scope).
        inner_scope = ("" if has_input or recorded else scope) + f"{config.get('name')}/"
        plans: list[TensorPlan] = []
        for index, layer in enumerate(layers[1:] if has_input else layers):
            position = index + 1 if has_input else index
            layer_plans, output = self.layer(
                layer, (*loc, "config", "layers", position), inner_scope, Call((shape,)), depth
            )
            plans.extend(layer_plans)
            shape = output if not isinstance(output, list) else None
        return plans, shape

    def functional(
        self, config: dict[str, Any], loc: Loc, depth: int
    ) -> tuple[list[TensorPlan], Output]:
        outputs: dict[tuple[str, int], Output] = {}
        plans: list[TensorPlan] = []
        for index, layer in enumerate(config["layers"]):
            layer_loc = (*loc, "config", "layers", index)
            class_name, layer_config = _config(layer, layer_loc)
            name = str(layer.get("name", layer_config.get("name")))
            if class_name == "InputLayer":
                outputs[(name, 0)] = _input_layer_shape(layer_config)
                continue
            nodes = layer.get("inbound_nodes") or []
            if not isinstance(nodes, list):
                raise SpecError((*layer_loc, "inbound_nodes"), "expected a list")
            first: Output = None
            for node_index, node in enumerate(nodes):
                call = self.node_call(node, outputs, (*layer_loc, "inbound_nodes", node_index))
                if node_index == 0:
                    # A Functional calls its layers while it is deserialized: at the top.
                    layer_plans, first = self.layer(layer, layer_loc, "", call, depth)
                    plans.extend(layer_plans)
                    outputs[(name, 0)] = first
                elif class_name in _MODELS or class_name in _WRAPPERS:
                    outputs[(name, node_index)] = first
                else:
                    outputs[(name, node_index)] = output_shape(class_name, layer_config, call)
            # Never called: Keras builds it only if it has a build_config.
            if not nodes and _build_shapes(layer) is not None:
                plans.extend(self.layer(layer, layer_loc, "", Call(), depth)[0])
        return plans, self.model_outputs(config.get("output_layers"), outputs)

    @staticmethod
    def model_outputs(spec: Any, outputs: dict[tuple[str, int], Output]) -> Output:
        def one(ref: Any) -> Shape | None:
            if not _is_history(ref):
                return None
            found = outputs.get((ref[0], ref[1]))
            if isinstance(found, list):
                return found[ref[2]] if isinstance(ref[2], int) and ref[2] < len(found) else None
            return found
        if isinstance(spec, list) and spec and isinstance(spec[0], list):
            return [one(ref) for ref in spec]
        return one(spec)

    def node_call(self, node: Any, outputs: dict[tuple[str, int], Output], loc: Loc) -> Call:
        """The input shapes of one call, from the tensors' histories (or recorded shapes)."""
        if not isinstance(node, dict):
            raise SpecError(loc, "expected a Keras 3 node {args, kwargs} (Keras 2 JSON is "
                            "not supported)")

        def shape_of(tensor: dict[str, Any]) -> Shape | None:
            tensor_config = tensor.get("config")
            if not isinstance(tensor_config, dict):
                return None
            recorded = as_shape(tensor_config.get("shape"))
            history = tensor_config.get("keras_history")
            if recorded is not None or not _is_history(history):
                return recorded
            found = outputs.get((history[0], history[1]))
            index = history[2]
            if isinstance(found, list):
                return found[index] if isinstance(index, int) and index < len(found) else None
            return found if index == 0 else None

        def tensors(value: Any) -> list[Shape | None]:
            if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
                return [shape_of(value)]
            if isinstance(value, list | tuple):
                return [shape for item in value for shape in tensors(item)]
            return []

        args = tensors(node.get("args"))
        kwargs: dict[str, Shape | None] = {}
        options: dict[str, Any] = {}
        node_kwargs = node.get("kwargs")
        for key, value in (node_kwargs if isinstance(node_kwargs, dict) else {}).items():
            found = tensors(value)
            if found:
                kwargs[key] = found[0]
            else:
                options[key] = value
        return Call(tuple(args), kwargs, options)

    # ------------------------------------------------------------------ layers ----

    def layer(
        self, obj: Any, loc: Loc, scope: str, call: Call, depth: int
    ) -> tuple[list[TensorPlan], Output]:
        """Plans and output shape of one layer called as ``call`` under ``scope``."""
        class_name, config = _config(obj, loc)
        if class_name in _MODELS:
            return self.model(obj, loc, scope, call, depth + 1)
        recorded = _build_shapes(obj)
        shapes = recorded if recorded is not None else self.call_shapes(class_name, call)
        # Built while deserialized (at the top) with a build_config, else on its first call.
        prefix = "" if recorded is not None else scope
        if call.first is None and shapes.get("input_shape") is not None:
            call = Call((shapes["input_shape"],), call.kwargs, call.options)
        if class_name in _WRAPPERS:
            if depth + 1 > self.max_depth:
                raise SpecError(loc, f"layers nested deeper than {self.max_depth}")
            inner_scope = f"{prefix}{config.get('name')}/"
            if class_name == "Bidirectional":
                return self.bidirectional(config, loc, inner_scope, shapes, depth + 1)
            return self.time_distributed(config, loc, inner_scope, shapes, depth + 1)
        if class_name in BUILDERS:
            keras_layer = KerasLayer(class_name, config, loc, prefix, shapes,
                                     self.layer_dtype(config, loc), self.warnings)
            return BUILDERS[class_name](keras_layer), output_shape(class_name, config, call)
        if class_name in KNOWN_WEIGHTLESS:
            return [], output_shape(class_name, config, call)
        raise SpecError(
            loc,
            f"layer {config.get('name')!r} has Keras class {class_name!r}, which weightinit "
            f"cannot import; layers with weights it imports: {', '.join(SUPPORTED_LAYERS)} "
            "(nested Sequential/Functional models and weightless layers such as Dropout, "
            "Flatten or pooling are accepted too)",
        )

    @staticmethod
    def call_shapes(class_name: str, call: Call) -> dict[str, Shape | None]:
        if class_name == "MultiHeadAttention":
            value = call.args[1] if len(call.args) > 1 else call.kwargs.get("value")
            key = call.args[2] if len(call.args) > 2 else call.kwargs.get("key")
            query = call.first if call.args else call.kwargs.get("query")
            return {"query_shape": query, "value_shape": value, "key_shape": key}
        return {"input_shape": call.first}

    def layer_dtype(self, config: dict[str, Any], loc: Loc) -> str:
        """The file dtype of a layer's weights: its policy's variable dtype if that is not
        float32 (mixed policies keep float32 variables), else the request's."""
        policy = config.get("dtype")
        if isinstance(policy, dict):
            if policy.get("class_name") not in ("DTypePolicy", "FloatDTypePolicy"):
                raise SpecError((*loc, "config", "dtype"),
                                f"dtype policy {policy.get('class_name')!r} (quantized "
                                "layers) is not supported")
            inner = policy.get("config")
            policy = inner.get("name") if isinstance(inner, dict) else None
        if policy is None:
            return self.dtype
        name = str(policy).removeprefix("mixed_")
        if str(policy).startswith("mixed_") or name == "float32":
            return self.dtype
        if name not in _STORED:
            raise SpecError((*loc, "config", "dtype"),
                            f"variable dtype {name!r} is not supported")
        return name

    # ---------------------------------------------------------------- wrappers ----

    def bidirectional(self, config: dict[str, Any], loc: Loc, scope: str,
                      shapes: dict[str, Shape | None], depth: int
                      ) -> tuple[list[TensorPlan], Output]:
        """``forward_<rnn>`` and ``backward_<rnn>`` (or the given backward layer)."""
        inner_loc = (*loc, "config", "layer")
        class_name, inner = _config(config.get("layer"), inner_loc)
        if class_name not in _RNNS:
            raise SpecError((*inner_loc, "class_name"),
                            f"Bidirectional wraps LSTM, GRU or SimpleRNN here, not {class_name!r}")
        base = str(inner.get("name"))
        forward = {**config["layer"],
                   "config": {**inner, "name": "forward_" + base.removeprefix("forward_")}}
        backward_obj = config.get("backward_layer")
        backward_loc = (*loc, "config", "backward_layer")
        if backward_obj is None:
            backward_obj = {**config["layer"],
                            "config": {**inner, "name": "backward_" + base.removeprefix(
                                "backward_")}}
            backward_loc = inner_loc
        call = Call((shapes.get("input_shape"),))
        plans, output = self.layer(forward, inner_loc, scope, call, depth)
        plans += self.layer(backward_obj, backward_loc, scope, call, depth)[0]
        if isinstance(output, list) or output is None:
            return plans, None
        merge = config.get("merge_mode", "concat")
        if merge == "concat":
            return plans, (*output[:-1], None if output[-1] is None else 2 * output[-1])
        return plans, [output, output] if merge is None else output

    def time_distributed(self, config: dict[str, Any], loc: Loc, scope: str,
                         shapes: dict[str, Shape | None], depth: int
                         ) -> tuple[list[TensorPlan], Output]:
        """The inner layer applied to every step: built with the step's shape."""
        shape = shapes.get("input_shape")
        step = (shape[0], *shape[2:]) if shape is not None and len(shape) > 2 else None
        plans, output = self.layer(config.get("layer"), (*loc, "config", "layer"), scope,
                                   Call((step,)), depth)
        output = _first(output)
        if output is None or shape is None:
            return plans, None
        return plans, (shape[0], shape[1], *output[1:])
