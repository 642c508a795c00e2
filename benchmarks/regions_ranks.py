"""One rank of ``regions.py``'s sharded-fetch comparison (started by torchrun, gloo, CPU).

    python -m torch.distributed.run --nproc_per_node 4 --standalone \\
        benchmarks/regions_ranks.py ARGS.json

Each round runs two cases in a shuffled order (seeded by the round): ``whole``, rank 0
alone filling an unsharded model (one request for the whole file, the others waiting at
a barrier), and ``sharded``, every rank filling its FSDP2 shards (``fully_shard`` per
block and at the root: dim-0 ``torch.chunk`` shards) with ``load_sharded``. The model is
built on the meta device each time, so both cases allocate, page-fault and fill the same
bytes in total. Timed from a barrier to the end of ``load_sharded`` on each rank; the
aggregate time of ``sharded`` is the slowest rank's. The server's CPU time is read from
``/proc`` around each case. Rank 0 prints one JSON line per case.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard

from weightinit.torch import load_sharded

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Block(nn.Module):
    def __init__(self, hidden: int, kv_dim: int, intermediate: int) -> None:
        super().__init__()
        self.input_layernorm = nn.RMSNorm(hidden)
        self.self_attn = nn.ModuleDict({
            "q_proj": nn.Linear(hidden, hidden, bias=False),
            "k_proj": nn.Linear(hidden, kv_dim, bias=False),
            "v_proj": nn.Linear(hidden, kv_dim, bias=False),
            "o_proj": nn.Linear(hidden, hidden, bias=False)})
        self.post_attention_layernorm = nn.RMSNorm(hidden)
        self.mlp = nn.ModuleDict({
            "gate_proj": nn.Linear(hidden, intermediate, bias=False),
            "up_proj": nn.Linear(hidden, intermediate, bias=False),
            "down_proj": nn.Linear(intermediate, hidden, bias=False)})


class Decoder(nn.Module):
    """The parameters of ``specs.llama_spec`` under the same names (no forward needed)."""

    def __init__(self, shape: dict[str, int]) -> None:
        super().__init__()
        hidden = shape["hidden"]
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(shape["vocab"], hidden)
        self.model.layers = nn.ModuleList(
            Block(hidden, shape["kv_dim"] or hidden, shape["intermediate"])
            for _ in range(shape["layers"]))
        self.model.norm = nn.RMSNorm(hidden)
        self.lm_head = nn.Linear(hidden, shape["vocab"], bias=False)


def server_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def meta_model(shape: dict[str, int], dtype: torch.dtype) -> Decoder:
    with torch.device("meta"):
        return Decoder(shape).to(dtype)


def run_case(case: str, args: dict[str, Any], rank: int, world: int) -> dict[str, Any]:
    dtype = getattr(torch, args["spec"]["dtype"])
    model = None
    if case == "sharded":
        model = meta_model(args["shape"], dtype)
        mesh = init_device_mesh("cpu", (world,))
        for block in model.model.layers:
            fully_shard(block, mesh=mesh)
        fully_shard(model, mesh=mesh)
    elif rank == 0:
        model = meta_model(args["shape"], dtype)
    dist.barrier()
    cpu_before = server_cpu_s(args["server_pid"]) if rank == 0 else 0.0
    start = time.perf_counter()
    result = None
    if model is not None:
        result = load_sharded(model, args["url"], args["spec"], requests_per_replica=1)
    seconds = time.perf_counter() - start
    dist.barrier()
    cpu = server_cpu_s(args["server_pid"]) - cpu_before if rank == 0 else 0.0
    mine = [seconds, result.data_bytes if result else 0, result.header_bytes if result else 0,
            result.requests if result else 0]
    every: list[Any] = [None] * world
    dist.all_gather_object(every, mine)
    del model, result
    active = every if case == "sharded" else every[:1]
    return {"case": case, "ranks": len(active), "seconds": max(r[0] for r in active),
            "rank_seconds": [r[0] for r in active], "rank_data_bytes": [r[1] for r in active],
            "rank_header_bytes": [r[2] for r in active], "requests": sum(r[3] for r in active),
            "server_cpu_s": cpu}


def main() -> None:
    args = json.loads(Path(sys.argv[1]).read_text())
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    for round_index in range(args["rounds"]):
        cases = ["whole", "sharded"]
        random.Random(round_index).shuffle(cases)
        for case in cases:
            figures = run_case(case, args, rank, world)
            if rank == 0:
                print(json.dumps({"round": round_index, **figures}), flush=True)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
