"""The peer: torch in-process, as a user makes initial weights today.

    python benchmarks/peer_torch.py RECIPE.json OUT.safetensors

Allocates every tensor of the recipe (``specs.torch_recipe``), fills it with the
``torch.nn.init`` function a user would call, and writes the dict with
``safetensors.torch.save_file``. Prints one JSON line: ``init_s``, ``save_s`` (timed from
the first allocation, after torch is imported; interpreter start-up is not counted), the
parameter count, torch's intra-op thread count and the peak RSS. Only torch and safetensors are
imported, so the child's peak RSS is torch's own.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def peak_rss_mib() -> float:
    """This process's peak RSS since its ``exec`` (``VmHWM``; ``ru_maxrss`` would carry
    over the parent's peak from before the fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(recipe_path: str, out_path: str) -> int:
    import torch
    from safetensors.torch import save_file

    recipe = json.loads(Path(recipe_path).read_text())
    start = time.perf_counter()
    tensors = {}
    for item in recipe:
        tensor = torch.empty(item["shape"], dtype=getattr(torch, item["dtype"]))
        getattr(torch.nn.init, item["init"])(tensor, **item["kwargs"])
        tensors[item["name"]] = tensor
    initialized = time.perf_counter()
    save_file(tensors, out_path)
    saved = time.perf_counter()
    print(json.dumps({"init_s": initialized - start, "save_s": saved - initialized,
                      "total_s": saved - start,
                      "parameters": sum(t.numel() for t in tensors.values()),
                      "threads": torch.get_num_threads(), "peak_rss_mib": peak_rss_mib()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
