"""One rank of the torchrun tests of ``weightinit.torch.load_sharded`` (gloo, CPU).

    python -m torch.distributed.run --nproc_per_node N sharded_worker.py SCENARIO ARGS.json

A small Llama-style model is built on the meta device, sharded as SCENARIO says (``fsdp``:
FSDP2 over every rank; ``tp``: tensor parallel, colwise and rowwise; ``2d``: TP 2 x FSDP
on a 2-D mesh), filled with ``load_sharded``, then checked: every all-gathered tensor's
sha256 equals the single-process file's; the rank received exactly its regions' bytes
plus headers (the ranks' sharded bytes add up to the file's); no torch op made a tensor
of a sharded parameter's full shape while loading; the model trains one step; a
distributed checkpoint saved on this mesh loads on another with the same values. Any
failed check raises, so the rank exits non-zero.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import get_model_state_dict, set_model_state_dict
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor, Replicate, Shard
from torch.distributed.tensor.parallel import (
    ColwiseParallel,
    RowwiseParallel,
    parallelize_module,
)
from torch.utils._python_dispatch import TorchDispatchMode
from weightinit.core.dtypes import ITEMSIZE

from weightinit.torch import load_sharded, spec_from_model


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.head_dim = dim // heads
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.o_proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        # -1 heads: under tensor parallelism each rank holds some of them.
        q, k, v = (p(x).view(b, s, -1, self.head_dim).transpose(1, 2)
                   for p in (self.q_proj, self.k_proj, self.v_proj))
        out = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(out.transpose(1, 2).reshape(b, s, -1))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.input_layernorm = nn.RMSNorm(dim)
        self.self_attn = Attention(dim, heads)
        self.post_attention_layernorm = nn.RMSNorm(dim)
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x))
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(nn.functional.silu(self.gate_proj(h)) * self.up_proj(h))


class TinyLlama(nn.Module):
    """Llama's layout in miniature; the vocabulary (32003) divides by no rank count, and a
    value head of 3 rows leaves a fourth rank nothing."""

    def __init__(self, vocab: int = 32003, dim: int = 32, heads: int = 4, hidden: int = 48,
                 layers: int = 2) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList(Block(dim, heads, hidden) for _ in range(layers))
        self.norm = nn.RMSNorm(dim)
        self.lm_head = nn.Linear(dim, vocab, bias=False)
        # 3 rows on 4 FSDP ranks: torch.chunk gives the last rank an empty shard.
        self.value_head = nn.Linear(dim, 3)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed_tokens(tokens)
        for layer in self.layers:
            x = layer(x)
        x = self.norm(x)
        return self.lm_head(x) + 0.0 * self.value_head(x).sum()


def tensor_parallel(model: TinyLlama, mesh: DeviceMesh) -> None:
    """Megatron-style: q/k/v/gate/up colwise, o/down rowwise, embedding and head by vocab."""
    parallelize_module(model, mesh, {
        "embed_tokens": RowwiseParallel(input_layouts=Replicate()),
        "lm_head": ColwiseParallel(output_layouts=Replicate()),
    })
    for block in model.layers:
        parallelize_module(block, mesh, {
            "self_attn.q_proj": ColwiseParallel(), "self_attn.k_proj": ColwiseParallel(),
            "self_attn.v_proj": ColwiseParallel(), "self_attn.o_proj": RowwiseParallel(),
            "gate_proj": ColwiseParallel(), "up_proj": ColwiseParallel(),
            "down_proj": RowwiseParallel(),
        })


def fsdp(model: TinyLlama, mesh: DeviceMesh) -> None:
    for block in model.layers:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)


def sharded_model(layout: str, world: int) -> TinyLlama:
    """A meta-built model sharded as ``layout`` over all ranks."""
    with torch.device("meta"):
        model = TinyLlama()
    if layout == "fsdp":
        fsdp(model, init_device_mesh("cpu", (world,)))
    elif layout == "tp":
        tensor_parallel(model, init_device_mesh("cpu", (world,)))
    elif layout == "2d":
        mesh = init_device_mesh("cpu", (world // 2, 2), mesh_dim_names=("dp", "tp"))
        tensor_parallel(model, mesh["tp"])
        fsdp(model, mesh["dp"])
    else:
        raise ValueError(layout)
    return model


class ShapeRecorder(TorchDispatchMode):
    """Every shape of a floating-point plain (local) tensor a torch op made (views of
    existing memory and byte views excluded), with the first op that made it."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: dict[tuple[int, ...], str] = {}

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if getattr(func, "is_view", False):  # a view of memory that exists: made nothing
            return out
        for value in out if isinstance(out, tuple | list) else (out,):
            if isinstance(value, torch.Tensor) and not isinstance(value, DTensor) \
                    and value.dtype.is_floating_point:  # not the raw byte views
                self.shapes.setdefault(tuple(value.shape), str(func))
        return out


def full_digests(model: nn.Module) -> dict[str, str]:
    """sha256 of every weight's bytes after an all-gather (every rank takes part)."""
    out = {}
    for name, tensor in model.state_dict().items():
        whole = tensor.full_tensor() if isinstance(tensor, DTensor) else tensor
        out[name] = hashlib.sha256(whole.detach().contiguous().view(torch.uint8)
                                   .numpy().tobytes()).hexdigest()
    return out


def local(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.to_local() if isinstance(tensor, DTensor) else tensor


def check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(f"rank {dist.get_rank()}: {message}")


def main() -> None:
    layout, args_path = sys.argv[1], sys.argv[2]
    args = json.loads(Path(args_path).read_text())
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    model = sharded_model(layout, world)
    spec = args["spec"]
    # The module route sees the sharded model's global shapes: the same spec.
    check(spec_from_model(model, spec["seed"]) == spec, "spec_from_model of the sharded "
          "model differs from the single-process model's")
    sharded = {name: t for name, t in model.state_dict().items()
               if isinstance(t, DTensor) and any(isinstance(p, Shard) for p in t.placements)}
    recorder = ShapeRecorder()
    with recorder:
        result = load_sharded(model, args["urls"] or None, spec)
    # Shapes a rank legitimately makes: its local tensors, and whole unsharded ones.
    legitimate = {tuple(local(t).shape) for t in model.state_dict().values()}
    for name, tensor in sharded.items():
        full = tuple(tensor.shape)
        check(full in legitimate or full not in recorder.shapes,
              f"a tensor of {name}'s full shape {full} was made while loading "
              f"(by {recorder.shapes.get(full)})")

    # Bytes: this rank's regions exactly, plus one safetensors header per request.
    expected = sum(local(t).numel() * ITEMSIZE[spec.get("dtype", "float32")]
                   for t in model.state_dict().values())
    check(result.data_bytes == expected, f"received {result.data_bytes} data bytes, its "
          f"shards take {expected}")
    check(result.bytes_received == result.data_bytes + result.header_bytes, "byte count")
    # Each element of a sharded tensor is held once per copy of it: per Replicate dim of
    # its mesh, and per rank outside its mesh (FSDP's 1-D mesh of a norm under TP x FSDP).
    # No more (duplication), no less (a gap).
    names = sorted(sharded)
    held = torch.tensor([local(sharded[n]).numel() for n in names] + [result.data_bytes,
                                                                        result.header_bytes])
    dist.all_reduce(held)
    for index, name in enumerate(names):
        tensor = sharded[name]
        mesh = tensor.device_mesh
        copies = world // mesh.size() * math.prod(
            mesh.size(dim) for dim, placement in enumerate(tensor.placements)
            if placement.is_replicate())
        check(int(held[index]) == math.prod(tensor.shape) * copies,
              f"{name}: the ranks hold {int(held[index])} elements of it, not "
              f"{math.prod(tensor.shape)} x {copies} copies")
    totals = held[-2:]
    empty = sorted(name for name, tensor in model.state_dict().items()
                   if local(tensor).numel() == 0)
    check(sorted(result.empty) == empty, f"empty shards {result.empty}, expected {empty}")
    empty_by_rank: list[Any] = [None] * world
    dist.all_gather_object(empty_by_rank, empty)
    if rank == 0:
        print(json.dumps({"layout": layout, "world": world, "per_rank_data_bytes":
                          result.data_bytes, "total_data_bytes": int(totals[0]),
                          "total_header_bytes": int(totals[1]), "file_data_bytes":
                          args["file_data_bytes"], "requests": result.requests,
                          "replicas": result.replicas_used, "empty": empty_by_rank}))

    digests = full_digests(model)
    check(digests == args["digests"], "all-gathered tensors differ from the file: "
          f"{sorted(n for n in digests if digests[n] != args['digests'].get(n))}")

    # A checkpoint of this mesh loads on another mesh with the same values.
    checkpoint = args["checkpoint"]
    dcp.save(get_model_state_dict(model), checkpoint_id=checkpoint)
    other = sharded_model(args["other_layout"], world)
    other.to_empty(device="cpu")
    state = get_model_state_dict(other)
    dcp.load(state, checkpoint_id=checkpoint)
    set_model_state_dict(other, state)
    check(full_digests(other) == args["digests"], "the checkpoint loaded on "
          f"{args['other_layout']} differs")

    # It trains: forward, backward, an optimizer step that changes the weights.
    tokens = torch.randint(0, 32003, (2, 8))  # same seed, same tokens on every rank
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss = nn.functional.cross_entropy(model(tokens).flatten(0, 1), tokens.roll(-1).flatten())
    loss.backward()
    optimizer.step()
    check(bool(torch.isfinite(loss)), f"loss {loss}")
    check(full_digests(model) != args["digests"], "the optimizer step changed nothing")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
