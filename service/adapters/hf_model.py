"""``weightinit.hf.from_config``: a ready transformers model from a config, with
weightinit's weights — ``AutoModel*.from_config`` in one call, reproducible bit for bit.

The weights are fetched (or generated here, without a server) on a second thread from the
first moment, while this thread imports the model's code and builds it with its
parameters on the meta device (``empty_weights``: buffers such as rotary ``inv_freq`` are
made by the model's own code); the received tensors then become the parameters
(``load_weights``: no copy, ties restored, strict). Received as torch tensors over one
buffer, so bfloat16 needs no ml_dtypes. The model class is the spec's: ``architecture``,
else ``config["architectures"][0]``, else the family's base model, and only ever a class
of the installed transformers for that ``model_type``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from weightinit.service.pretrained import config_dict, pretrained_spec


def from_config(
    config: Any,
    *,
    seed: int,
    server: str | None = None,
    dtype: str = "bfloat16",
    architecture: str | None = None,
    init_recipe: str = "family",
    token: str | None = None,
) -> Any:
    """The model ``config`` describes, its weights weightinit's (the family's own
    initialization, or torch's constructor defaults with ``init_recipe="torch"``).

    ``server``: a weightinit server's base URL, whose tracing plans the weights (the
    ``[hf]`` extra needed there); without it they are planned and generated in this
    process. Either way the bytes are the same for the same config, seed and dtype.
    Needs torch and transformers here. Raises ``WeightinitError``/``SpecError`` for a
    config the service refuses, with the field named.
    """
    document = config_dict(config)
    spec = pretrained_spec(document, seed=seed, dtype=dtype, architecture=architecture,
                           init_recipe=init_recipe)
    pool = ThreadPoolExecutor(1, thread_name_prefix="weightinit-fetch")
    try:
        tensors = pool.submit(_fetch, spec, server, token)
        model = _build(document, architecture, dtype)
        weights = tensors.result()
    finally:
        # After a failed build the error is raised at once; a fetch still running ends
        # on its own and its memory goes with it.
        pool.shutdown(wait=False)
    from weightinit.service.adapters.torch_loading import load_weights

    load_weights(model, weights)
    return model


def _fetch(spec: dict[str, Any], server: str | None, token: str | None) -> dict[str, Any]:
    if server is not None:
        from weightinit.service.client.client import Client

        with Client(server, token) as client:
            return client.init_tensors(spec)
    return _generate(spec)


def _generate(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec's file generated in this process into one fresh buffer, as tensors."""
    from weightinit.core import ChunkStream, Spec, build_plan
    from weightinit.core.safetensors_io.header import parse_header
    from weightinit.core.safetensors_io.writer import file_size, header_bytes, stream_bytes
    from weightinit.service.client.receive import MemorySink, tensors_from_buffer

    plan = build_plan(Spec.model_validate(spec))
    header = header_bytes(plan)
    sink = MemorySink(file_size(plan, header))
    position = 0
    try:
        for piece in stream_bytes(header, iter(ChunkStream(plan))):
            size = memoryview(piece).nbytes
            with sink.region(position, size) as view:
                view[:] = memoryview(piece).cast("B")
            position += size
    finally:
        sink.close()
    return tensors_from_buffer(sink.buffer, parse_header(header))


def _build(document: dict[str, Any], architecture: str | None, dtype: str) -> Any:
    """The model class of the spec, built from the config with its parameters on meta."""
    import torch
    from transformers import AutoConfig
    from weightinit.core.hf.families import check_raw_config
    from weightinit.core.hf.tracing import default_architecture, model_class
    from weightinit.service.adapters.torch_loading import empty_weights

    model_type = check_raw_config(document)
    cls = model_class(model_type, architecture or default_architecture(model_type, document))
    options = {k: v for k, v in document.items() if k != "model_type"}
    built = AutoConfig.for_model(model_type, **options)
    with empty_weights():
        # What every AutoModel*.from_config calls for the class it picks.
        return cls._from_config(built, dtype=getattr(torch, dtype))
