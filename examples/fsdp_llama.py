"""Sharded initialization under torchrun: a ``LlamaForCausalLM`` built without memory for
its weights, sharded with FSDP2, each rank fetching only its own shards from weightinit,
then one training step and a distributed checkpoint.

    pip install 'weightinit[hf]'            # the server's huggingface spec source
    weightinit serve --port 8000 &          # or any deployment; repeat --server per replica
    torchrun --nproc_per_node 2 examples/fsdp_llama.py --server http://127.0.0.1:8000 \\
        [--checkpoint DIR] [--verify]

Per rank: the model is built inside ``empty_weights()`` (parameters on the meta device;
the rotary ``inv_freq`` buffer keeps the value the model's code computes), every decoder
layer and the root are ``fully_shard``-ed (dim-0 shards; the vocabulary of 1001 splits
unevenly), and ``load_sharded`` asks the server for this rank's regions of the spec: the
model's config as the ``huggingface`` source, so the weights follow Llama's own
``_init_weights``. Then a forward and backward pass, an AdamW step, and
``torch.distributed.checkpoint.save``. ``--verify`` all-gathers every tensor and checks
its sha256 against the server's report of the single-process file. Backend: nccl on
GPUs, else gloo on CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_model_state_dict
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from transformers import LlamaConfig, LlamaForCausalLM

from weightinit import Client
from weightinit.torch import empty_weights, load_sharded

CONFIG = LlamaConfig(hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, vocab_size=1001,
                     max_position_embeddings=128, bos_token_id=1, eos_token_id=2)
SEED = 1234


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", action="append",
                        help="a weightinit URL; repeat for replicas (default WEIGHTINIT_URL)")
    parser.add_argument("--token", default=os.environ.get("WEIGHTINIT_TOKEN"))
    parser.add_argument("--checkpoint", help="DCP directory (default: a temporary one)")
    parser.add_argument("--verify", action="store_true",
                        help="all-gather every tensor and compare with the server's report")
    args = parser.parse_args()
    args.server = args.server or [os.environ.get("WEIGHTINIT_URL", "http://127.0.0.1:8000")]
    return args


def spec() -> dict:
    """The model's weights as weightinit draws them: the config is the spec."""
    return {"seed": SEED, "dtype": "float32",
            "huggingface": {"config": CONFIG.to_dict(), "architecture": "LlamaForCausalLM"}}


def verify(model: LlamaForCausalLM, args: argparse.Namespace, data_bytes: int) -> bool:
    """Every rank all-gathers; rank 0 compares per-tensor sha256 with the server's report
    and the ranks' bytes with the file's (nothing fetched twice under FSDP)."""
    gathered = {}
    for name, tensor in model.state_dict().items():
        full = tensor.full_tensor().cpu().contiguous()
        gathered[name] = hashlib.sha256(full.view(torch.uint8).numpy().tobytes()).hexdigest()
    total = torch.tensor([data_bytes])
    dist.all_reduce(total)
    if dist.get_rank() != 0:
        return True
    with Client(args.server[0], token=args.token) as client:
        report = client.report(spec())
    expected = {entry["name"]: entry["sha256"] for entry in report["tensors"]}
    return gathered == expected and int(total) == report["total_bytes"]


def main() -> None:
    args = parse_args()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    device = f"cuda:{rank % torch.cuda.device_count()}" if backend == "nccl" else "cpu"
    if backend == "nccl":
        torch.cuda.set_device(device)
    torch.manual_seed(0)  # the same batch on every rank

    with empty_weights():  # parameters on meta, inv_freq computed
        model = LlamaForCausalLM(CONFIG)
    mesh = init_device_mesh(device.split(":")[0], (world,))
    for layer in model.model.layers:  # fully_shard moves the buffers to the mesh's device
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)

    result = load_sharded(model, args.server, spec(), token=args.token, device=device)
    verified = verify(model, args, result.data_bytes) if args.verify else None

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tokens = torch.randint(0, CONFIG.vocab_size, (2, 16), device=device)
    loss = model(input_ids=tokens, labels=tokens).loss
    loss.backward()
    optimizer.step()

    checkpoint = args.checkpoint or tempfile.mkdtemp(prefix="fsdp_llama_")
    dcp.save(get_model_state_dict(model), checkpoint_id=checkpoint)
    if rank == 0:
        line = (f"fsdp_llama: {world} ranks, rank 0 filled {result.tensors} tensors with "
                f"{result.data_bytes} bytes in {result.requests} requests, loss "
                f"{loss.item():.3f}, checkpoint {checkpoint}")
        if verified is not None:
            line += f", all-gathered tensors equal the file: {verified}"
        print(line, flush=True)
    # Every rank done with every collective before any tears down: a gloo rank that exits
    # while its peer still talks to it can abort in gloo's threads.
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
