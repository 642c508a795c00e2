"""Regions: their cost per element against the whole tensor, and 4 ranks fetching the
1B Llama's FSDP2 shards from one server against one client fetching the whole file.

    python benchmarks/regions.py [--rounds 5] [--rank-rounds 3] [--skip-ranks]

One run, three parts, every side measured in the same invocation:

1. **In process.** A 32000 x 2048 bfloat16 N(0, 0.02) tensor: regions of 1, 16, 256 and
   4096 rows, the whole, an FSDP 1/4 row shard and a TP 1/4 column shard (512 of 2048
   columns: one run per row), each planned (``build_plan`` of a spec with the region in
   ``select``) and generated through ``ChunkStream`` (the path the server streams). Time
   per request: each round times every case in a shuffled order, as the mean over
   repeats covering ~2M elements; the best of ``--rounds`` rounds is kept. A
   least-squares line ``t = fixed + n x marginal`` over the four row regions separates
   the per-request fixed cost from the marginal cost per element, which is compared
   with the whole tensor's cost per element.
2. **Over HTTP.** The same row regions and the whole, ``POST /v1/init`` to a real
   ``weightinit serve`` on one keep-alive connection, body read to the last byte; the
   same fit.
3. **4 ranks.** ``regions_ranks.py`` under torchrun (4 ranks, gloo): the 1B Llama of
   TinyLlama's shape (hidden 2048, 16 layers, intermediate 5632, vocab 32000, 8 KV heads,
   untied, bfloat16), FSDP2-sharded, each rank filling its shards with
   ``weightinit.torch.load_sharded`` from the server, against rank 0 alone filling the
   unsharded model (one request, the whole file), interleaved over ``--rank-rounds``.

Prints markdown tables; raw figures go to ``benchmarks/results/regions.json``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from weightinit.core import ChunkStream, Spec, build_plan

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.sides import Server, cpu_seconds  # noqa: E402
from benchmarks.specs import LLAMA_1B_GQA, llama_spec  # noqa: E402

ROWS, COLUMNS = 32000, 2048
SPEC = {"seed": 1, "dtype": "bfloat16", "layers": [
    {"type": "tensor", "name": "embed.weight", "shape": [ROWS, COLUMNS],
     "init": {"name": "normal", "mean": 0.0, "std": 0.02}}]}
FIT_ROWS = (1, 16, 256, 4096)
SHARDS = {
    "rows 8000 (FSDP 1/4)": {"offset": [8000, 0], "shape": [8000, COLUMNS]},
    "columns 512 (TP 1/4)": {"offset": [0, 1024], "shape": [ROWS, 512]},
}
MIN_ELEMENTS_PER_TIMING = 2_000_000
READ_BUFFER_BYTES = 4 << 20


def rows_region(rows: int) -> dict[str, Any]:
    """``rows`` rows from the middle of the tensor (not aligned to any chunk)."""
    start = min(17000, ROWS - rows)
    return {"offset": [start, 0], "shape": [rows, COLUMNS]}


def body(region: dict[str, Any] | None) -> dict[str, Any]:
    return {**SPEC, "select": None if region is None else [{"name": "embed.weight",
                                                              **region}]}


def elements(region: dict[str, Any] | None) -> int:
    shape = [ROWS, COLUMNS] if region is None else region["shape"]
    return shape[0] * shape[1]


def thread_cpu_ns(pid: int) -> int:
    """CPU time of every thread of a process, in ns (``schedstat``: no 10 ms ticks)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):  # a thread that just ended
            continue
    return total


def interleaved(requests: dict[str, Any], numel: dict[str, int], rounds: int,
                cpu: Any) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds per request of each case, wall and CPU (``cpu()``: ns of the process(es)
    doing the work): every round times every case once, in a shuffled order (seeded by
    the round), as the mean over repeats covering ~2M elements, so load from other work
    on the machine falls on all cases alike; the best round of each is kept. CPU time is
    what the shared machine distorts least (a thread waiting for a core costs none)."""
    for request in requests.values():  # warm: first calls load kernels, map buffers
        request()
    wall = dict.fromkeys(requests, float("inf"))
    spent = dict.fromkeys(requests, float("inf"))
    for round_index in range(rounds):
        order = list(requests)
        random.Random(round_index).shuffle(order)
        for case in order:
            repeats = max(1, MIN_ELEMENTS_PER_TIMING // numel[case])
            cpu_start, start = cpu(), time.perf_counter()
            for _ in range(repeats):
                requests[case]()
            wall[case] = min(wall[case], (time.perf_counter() - start) / repeats)
            spent[case] = min(spent[case], (cpu() - cpu_start) / 1e9 / repeats)
    return wall, spent


def in_process(region: dict[str, Any] | None) -> None:
    """Plan and generate one request, chunks dropped (what the server does per request)."""
    for _chunk in ChunkStream(build_plan(Spec.model_validate(body(region)))):
        pass


class KeepAlive:
    """``POST /v1/init`` on one keep-alive connection, every byte read into one buffer."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        self.buffer = memoryview(bytearray(READ_BUFFER_BYTES))

    def __call__(self, payload: bytes) -> int:
        self.connection.request("POST", "/v1/init", body=payload,
                                headers={"Content-Type": "application/json"})
        response = self.connection.getresponse()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {response.read(300)!r}")
        received = 0
        while count := response.readinto(self.buffer):
            received += count
        return received


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least squares ``seconds = fixed + elements x marginal``: (fixed s, marginal s)."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    slope = (sum((x - mean_x) * (y - mean_y) for x, y in points)
             / sum((x - mean_x) ** 2 for x in xs))
    return mean_y - slope * mean_x, slope


def cost_table(title: str, wall: dict[str, float], cpu: dict[str, float],
               numel: dict[str, int]) -> dict[str, Any]:
    """Print one side's table and fits (on wall and on CPU time); returns the figures."""
    print(f"\n### {title}\n\n| case | elements | wall us per request | wall ns/element | "
          "vs whole | CPU us per request | CPU ns/element | vs whole |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    whole = {kind: times["whole"] / numel["whole"] * 1e9
             for kind, times in (("wall", wall), ("cpu", cpu))}
    for case in wall:
        per_wall, per_cpu = (times[case] / numel[case] * 1e9 for times in (wall, cpu))
        print(f"| {case} | {numel[case]} | {wall[case] * 1e6:.1f} | {per_wall:.2f} | "
              f"{per_wall / whole['wall']:.2f} | {cpu[case] * 1e6:.1f} | {per_cpu:.2f} | "
              f"{per_cpu / whole['cpu']:.2f} |")
    figures: dict[str, Any] = {"wall_s": wall, "cpu_s": cpu, "elements": numel}
    for kind, times in (("wall", wall), ("cpu", cpu)):
        fixed, marginal = fit([(numel[f"{r} rows"], times[f"{r} rows"]) for r in FIT_ROWS])
        print(f"\n{kind} fit over {', '.join(map(str, FIT_ROWS))} rows: fixed "
              f"{fixed * 1e6:.1f} us per request, marginal {marginal * 1e9:.2f} ns/element "
              f"= {marginal * 1e9 / whole[kind]:.2f} x the whole's {whole[kind]:.2f} "
              "ns/element")
        figures[kind] = {"fixed_s": fixed, "marginal_s": marginal,
                         "whole_ns_per_element": whole[kind]}
    return figures


def element_costs(server: Server, rounds: int) -> dict[str, Any]:
    cases: dict[str, dict[str, Any] | None] = {f"{r} rows": rows_region(r) for r in FIT_ROWS}
    cases["whole"] = None
    local_cases = {**cases, **SHARDS}
    numel = {case: elements(region) for case, region in local_cases.items()}
    local = interleaved({case: lambda region=region: in_process(region)
                         for case, region in local_cases.items()}, numel, rounds,
                        time.process_time_ns)
    client = KeepAlive(server.port)
    payloads = {case: json.dumps(body(region)).encode() for case, region in cases.items()}
    http_times = interleaved(
        {case: lambda p=payloads[case]: client(p) for case in cases}, numel, rounds,
        lambda: thread_cpu_ns(server.pid) + time.process_time_ns())
    client.connection.close()
    return {"in_process": cost_table("In process (plan + ChunkStream)", *local, numel),
            "http": cost_table("Over HTTP (one keep-alive connection; CPU: server + client)",
                               *http_times, {c: numel[c] for c in cases})}


def sharded_fetch(server: Server, rank_rounds: int) -> dict[str, Any]:
    """The torchrun comparison; its per-case figures and the summary."""
    spec = llama_spec("bfloat16", LLAMA_1B_GQA)
    plan = build_plan(Spec.model_validate(spec))
    shape = {"hidden": LLAMA_1B_GQA.hidden, "layers": LLAMA_1B_GQA.layers,
             "intermediate": LLAMA_1B_GQA.intermediate, "vocab": LLAMA_1B_GQA.vocab,
             "kv_dim": LLAMA_1B_GQA.kv_dim}
    with tempfile.TemporaryDirectory() as folder:
        args_path = Path(folder) / "args.json"
        args_path.write_text(json.dumps({
            "url": f"http://127.0.0.1:{server.port}", "spec": spec, "shape": shape,
            "rounds": rank_rounds, "server_pid": server.pid}))
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore",
               "TORCH_CPP_LOG_LEVEL": "ERROR"}
        done = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "4",
             "--standalone", str(ROOT / "benchmarks" / "regions_ranks.py"), str(args_path)],
            capture_output=True, text=True, env=env, cwd=folder, timeout=3600)
    if done.returncode:
        raise SystemExit(done.stdout[-2000:] + done.stderr[-4000:])
    runs = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"round"')]
    whole = [r for r in runs if r["case"] == "whole"]
    sharded = [r for r in runs if r["case"] == "sharded"]
    ratios = [s["seconds"] / w["seconds"] for w, s in zip(whole, sharded, strict=True)]
    gb = plan.total_bytes / 1e9
    print(f"\n### 4 ranks, FSDP2 shards of the 1B Llama ({plan.total_parameters} parameters, "
          f"{plan.total_bytes} tensor bytes), {len(whole)} interleaved rounds\n")
    print("| case | requests | seconds, median (min-max) | GB/s | server CPU s per GB |")
    print("|---|---:|---|---:|---:|")
    for name, rows in (("1 client, the whole file", whole), ("4 ranks, their shards", sharded)):
        seconds = [r["seconds"] for r in rows]
        cpu = statistics.median(r["server_cpu_s"] for r in rows) / gb
        print(f"| {name} | {rows[0]['requests']} | {statistics.median(seconds):.2f} "
              f"({min(seconds):.2f}-{max(seconds):.2f}) | "
              f"{gb / statistics.median(seconds):.2f} | {cpu:.2f} |")
    print(f"\n4 ranks / 1 client, per round: median {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f})")
    last = sharded[-1]
    print("\n| rank | data bytes | header bytes | seconds (last round) |\n|---:|---:|---:|---:|")
    for rank, (data, header, seconds) in enumerate(zip(
            last["rank_data_bytes"], last["rank_header_bytes"], last["rank_seconds"],
            strict=True)):
        print(f"| {rank} | {data} | {header} | {seconds:.2f} |")
    total = sum(last["rank_data_bytes"])
    print(f"| sum | {total} | {sum(last['rank_header_bytes'])} | |")
    print(f"\nsum of the ranks' data bytes {total} {'==' if total == plan.total_bytes else '!='}"
          f" the file's tensor bytes {plan.total_bytes}; whole-file request: "
          f"{whole[-1]['rank_data_bytes'][0]} data + {whole[-1]['rank_header_bytes'][0]} "
          "header bytes")
    return {"runs": runs, "ratios": ratios, "file_tensor_bytes": plan.total_bytes,
            "bytes_equal": total == plan.total_bytes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rank-rounds", type=int, default=3)
    parser.add_argument("--skip-ranks", action="store_true")
    options = parser.parse_args(argv)
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    server = Server()
    try:
        figures: dict[str, Any] = {"load_start": os.getloadavg()[0]}
        figures["elements"] = element_costs(server, options.rounds)
        if not options.skip_ranks:
            figures["ranks"] = sharded_fetch(server, options.rank_rounds)
        figures["load_end"] = os.getloadavg()[0]
        figures["server_cpu_s_total"] = cpu_seconds(server.pid)
    finally:
        server.stop()
    print(f"\nload average at end: {figures['load_end']:.1f}")
    results = ROOT / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    (results / "regions.json").write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
