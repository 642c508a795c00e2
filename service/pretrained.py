"""Write a ``from_pretrained``-ready directory for a Hugging Face config.

``config.json`` plus the weights as ``save_pretrained`` lays them out (one
``model.safetensors``, or shards above ``max_shard_size`` with
``model.safetensors.index.json``), and ``generation_config.json`` for a model that can
generate, as ``save_pretrained`` writes it. The plan document carries that file's object
(made by the tracing worker, local or the server's), so this process never imports
transformers: with ``server`` nothing of the ``[hf]`` extra is needed here.

Each shard is one spec with ``select`` = its tensors, generated here
(``core.write_file``) or fetched from a server (``Client.init``): streamed to disk, so
memory stays bounded whatever the model's size, and every shard's bytes are those of the
whole model's file for its tensors. The sha256 of every shard is returned.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from weightinit.core.dtypes import ITEMSIZE
from weightinit.core.hf.directory import (
    DEFAULT_MAX_SHARD_SIZE,
    GENERATION_CONFIG_FILE,
    INDEX_FILE,
    SHARD_PATTERN,
    SINGLE_FILE,
    ShardFile,
    TensorSize,
    directory_config,
    index_document,
    parse_size,
    shard_layout,
)


def config_dict(config: Any) -> dict[str, Any]:
    """A config given as a dict, a ``config.json`` path or a transformers config object,
    as the JSON object a ``huggingface`` spec carries."""
    if isinstance(config, dict):
        return config
    if isinstance(config, str | os.PathLike):
        loaded = json.loads(Path(config).read_text())
        if not isinstance(loaded, dict):
            raise ValueError(f"{os.fspath(config)} does not hold a JSON object")
        return loaded
    if hasattr(config, "to_dict"):
        from weightinit.service.adapters.torch_hf import json_config

        return json_config(config.to_dict())
    raise TypeError("config is a dict, the path of a config.json or a transformers config, "
                    f"not {type(config).__name__}")


def pretrained_spec(config: dict[str, Any], *, seed: int, dtype: str = "float32",
                    architecture: str | None = None, init_recipe: str = "family"
                    ) -> dict[str, Any]:
    """The spec (JSON body) of a config's weights."""
    source: dict[str, Any] = {"config": config, "init_recipe": init_recipe}
    if architecture is not None:
        source["architecture"] = architecture
    return {"seed": seed, "dtype": dtype, "huggingface": source}


def _sizes(plan_tensors: list[dict[str, Any]]) -> list[TensorSize]:
    sizes = []
    for entry in plan_tensors:
        numel = math.prod(entry["shape"])
        sizes.append(TensorSize(entry["name"], numel, numel * ITEMSIZE[entry["dtype"]]))
    return sizes


def save_pretrained(
    config: dict[str, Any] | str | os.PathLike[str],
    directory: str | os.PathLike[str],
    *,
    seed: int,
    dtype: str = "float32",
    architecture: str | None = None,
    init_recipe: str = "family",
    max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE,
    server: str | None = None,
    token: str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Write ``config.json`` and the weights of ``config`` (a dict or a config.json path)
    into ``directory``; return the files written with their bytes and sha256.

    Locally (the ``[hf]`` extra needed here) or, with ``server``, from a weightinit
    server (the extra needed there only). Raises ``SpecError``/``WeightinitError`` for a
    bad config, ``ValueError`` for a bad ``max_shard_size``.
    """
    config = config_dict(config)
    parse_size(max_shard_size)  # a bad size fails before anything is planned
    spec = pretrained_spec(config, seed=seed, dtype=dtype, architecture=architecture,
                           init_recipe=init_recipe)
    target = Path(directory)
    if server is not None:
        from weightinit.service.client.client import Client

        with Client(server, token=token) as client:
            document = client.plan(spec)
            shards = shard_layout(_sizes(document["tensors"]), max_shard_size)
            target.mkdir(parents=True, exist_ok=True)
            files = [_fetch_shard(client, spec, shard, target, progress) for shard in shards]
    else:
        from weightinit.core import Spec, build_plan, plan_document

        plan = build_plan(Spec.model_validate(spec))
        document = plan_document(plan)
        shards = shard_layout(_sizes(document["tensors"]), max_shard_size)
        target.mkdir(parents=True, exist_ok=True)
        files = [_write_shard(spec, shard, target) for shard in shards]
    sizes = _sizes(document["tensors"])
    written = {shard.filename for shard in shards}
    _remove_stale(target, written)
    index_path = None
    if len(shards) > 1:
        index_path = target / INDEX_FILE
        index_path.write_text(json.dumps(index_document(sizes, shards), indent=2,
                                         sort_keys=True) + "\n")
    config_path = target / "config.json"
    config_path.write_text(json.dumps(directory_config(config, architecture or
                                                       _given_architecture(config), dtype),
                                      indent=2, sort_keys=True) + "\n")
    generation_path = _write_generation_config(document.get("huggingface"), target)
    return {
        "directory": str(target),
        "config": str(config_path),
        "generation_config": None if generation_path is None else str(generation_path),
        "index": None if index_path is None else str(index_path),
        "files": files,
        "total_parameters": sum(t.numel for t in sizes),
        "total_size": sum(t.nbytes for t in sizes),
        "spec_sha256": document["spec_sha256"],
    }


def _given_architecture(config: dict[str, Any]) -> str | None:
    given = config.get("architectures")
    return given[0] if isinstance(given, list) and given and isinstance(given[0], str) else None


def _write_generation_config(model: dict[str, Any] | None, target: Path) -> Path | None:
    """``generation_config.json`` as ``save_pretrained`` writes it (the same JSON text), or
    none for a model class that cannot generate. A server of an earlier release sends no
    model description: none is written then, and ``from_pretrained`` derives the same
    generation config from ``config.json``. Either way without one, a stale file from an
    earlier run into the directory is removed (it may be another config's)."""
    path = target / GENERATION_CONFIG_FILE
    if model is None or model["generation_config"] is None:
        path.unlink(missing_ok=True)
        return None
    path.write_text(json.dumps(model["generation_config"], indent=2, sort_keys=True) + "\n")
    return path


def _shard_spec(spec: dict[str, Any], shard: ShardFile) -> dict[str, Any]:
    return {**spec, "select": list(shard.names)}


def _write_shard(spec: dict[str, Any], shard: ShardFile, target: Path) -> dict[str, Any]:
    from weightinit.core import Spec, build_plan, write_file

    plan = build_plan(Spec.model_validate(_shard_spec(spec, shard)))
    path = target / shard.filename
    observer = write_file(plan, path)
    return {"file": shard.filename, "bytes": path.stat().st_size,
            "sha256": observer.file_sha256.hexdigest(), "tensors": len(shard.names)}


def _fetch_shard(client: Any, spec: dict[str, Any], shard: ShardFile, target: Path,
                 progress: bool) -> dict[str, Any]:
    path = target / shard.filename
    result = client.init(_shard_spec(spec, shard), path=path, progress=progress)
    return {"file": shard.filename, "bytes": path.stat().st_size,
            "sha256": result.file_sha256, "tensors": len(shard.names)}


def _remove_stale(target: Path, written: set[str]) -> None:
    """Weights files of an earlier layout (as save_pretrained cleans its directory)."""
    for path in target.iterdir():
        stale = SHARD_PATTERN.match(path.name) or path.name in (SINGLE_FILE, INDEX_FILE)
        if stale and path.name not in written and path.is_file():
            path.unlink()
    if len(written) == 1 and (target / INDEX_FILE).exists():
        (target / INDEX_FILE).unlink()
