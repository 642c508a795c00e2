"""Per-element cost of a region against the whole tensor, in-process (one run).

    python benchmarks/regions.py

A 32000 x 2048 bfloat16 normal tensor: the whole, one row, a torch.chunk row shard
(8000 rows) and a column shard (512 of 2048 columns: one run per row). Each case is
generated through the engine's ChunkStream (the path the server streams) and timed
best of ``ROUNDS``; the table gives ns per element and the ratio to the whole.
"""

from __future__ import annotations

import time

from weightinit.core import ChunkStream, Spec, build_plan

ROUNDS = 5
SPEC = {"seed": 1, "dtype": "bfloat16", "layers": [
    {"type": "tensor", "name": "embed.weight", "shape": [32000, 2048],
     "init": {"name": "normal", "mean": 0.0, "std": 0.02}}]}
CASES = {
    "whole": None,
    "1 row": {"offset": [17000, 0], "shape": [1, 2048]},
    "rows 8000 (FSDP 1/4)": {"offset": [8000, 0], "shape": [8000, 2048]},
    "columns 512 (TP 1/4)": {"offset": [0, 1024], "shape": [32000, 512]},
}


def best_ns_per_element(region: dict | None) -> float:
    select = None if region is None else [{"name": "embed.weight", **region}]
    plan = build_plan(Spec.model_validate({**SPEC, "select": select}))
    elements = plan.total_parameters
    best = float("inf")
    # Tiny regions are repeated so each timing covers at least ~2M elements.
    repeats = max(1, 2_000_000 // elements)
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(repeats):
            for _chunk in ChunkStream(plan):
                pass
        best = min(best, (time.perf_counter() - start) / repeats)
    return best / elements * 1e9


def main() -> None:
    whole = best_ns_per_element(None)
    print(f"{'case':24} {'ns/element':>10} {'vs whole':>9}")
    for name, region in CASES.items():
        cost = whole if region is None else best_ns_per_element(region)
        print(f"{name:24} {cost:10.2f} {cost / whole:9.2f}")


if __name__ == "__main__":
    main()
