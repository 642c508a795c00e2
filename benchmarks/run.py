#!/usr/bin/env python3
"""weightinit against torch and against the hardware, side by side, in one command.

    python benchmarks/run.py             # 5 interleaved runs at full size (~10 min)
    python benchmarks/run.py --quick     # small sizes, 2 runs, well under a minute (CI)

Every run measures every side once, in a shuffled order (seeded by the run number), so
machine noise falls on all sides alike: the torch peer (``torch.nn.init`` +
``save_file`` in a child process), ``weightinit serve`` streaming to a fast client (and
to a file), the engine alone, the limits (raw bits on all cores, memcpy, uvicorn's
ceiling), the server's peak RSS, latencies, 1 vs 2 workers and the cost of statistics.
Prints the table of medians (min-max) with the ratios against the issue's targets, writes
the raw figures to ``benchmarks/results/<date>.json`` (``quick-latest.json`` for
``--quick``) and, for a full run, the table into ``benchmarks/README.md`` between its
``results`` markers.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from weightinit.core import ChunkStream, Plan, Spec, build_plan  # noqa: E402

from benchmarks import limits, sides  # noqa: E402
from benchmarks.http_roundtrip import SMALL_MLP, latency_ms, transformer_spec  # noqa: E402
from benchmarks.render import render_markdown  # noqa: E402
from benchmarks.specs import (  # noqa: E402
    LLAMA_1B,
    LLAMA_7B,
    LlamaShape,
    conv_mlp_spec,
    llama_spec,
    torch_recipe,
)

README = ROOT / "benchmarks" / "README.md"
RESULTS = ROOT / "benchmarks" / "results"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


@dataclass(frozen=True)
class Config:
    """Sizes and repetitions of one benchmark invocation."""

    runs: int
    llama: LlamaShape
    big: LlamaShape
    conv_width: int
    conv_stages: tuple[int, ...]
    requests: int
    transport_bytes: int


FULL = Config(5, LLAMA_1B, LLAMA_7B, 8192, (64, 128, 256, 512, 1024), 200, 256 << 20)
QUICK = Config(2, LlamaShape(256, 2, 704, 4000), LlamaShape(512, 4, 1408, 8000), 1024,
               (16, 32, 64), 20, 8 << 20)
# uvicorn protocol, event loop and write size, each streaming a preallocated buffer.
TRANSPORTS = [("httptools", "uvloop", 256 << 10), ("httptools", "uvloop", 1 << 20),
              ("httptools", "uvloop", 4 << 20), ("httptools", "uvloop", 16 << 20),
              ("h11", "uvloop", 4 << 20), ("httptools", "asyncio", 4 << 20)]


def wait_for_quiet(threshold: float, max_wait_s: float, poll_s: float = 120.0) -> None:
    """Wait (up to ``max_wait_s``) for the 1-minute load average to drop below ``threshold``."""
    deadline = time.monotonic() + max_wait_s
    while (load := os.getloadavg()[0]) >= threshold and time.monotonic() < deadline:
        print(f"load average {load:.2f} >= {threshold}: waiting", flush=True)
        time.sleep(poll_s)


def filesystem(path: Path) -> str:
    """The type of the filesystem holding ``path`` (from ``/proc/mounts``)."""
    best, kind = "", "unknown filesystem"
    resolved = str(path.resolve())
    for line in Path("/proc/mounts").read_text().splitlines():
        _, mount, fstype, *_ = line.split()
        if (resolved == mount or resolved.startswith(mount.rstrip("/") + "/")) and \
                len(mount) > len(best):
            best, kind = mount, fstype
    return kind


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


class Benchmark:
    """The servers, plans, executors and temporary files shared by all runs."""

    def __init__(self, config: Config, folder: Path, files: Path) -> None:
        self.config = config
        self.folder = folder
        self.files = files  # where the torch peer and the file-writing sides write
        self.specs = {
            "llama_bf16": llama_spec("bfloat16", config.llama),
            "llama_f32": llama_spec("float32", config.llama),
            "convmlp_f32": conv_mlp_spec(config.conv_width, config.conv_stages),
            "llama7b_bf16": llama_spec("bfloat16", config.big),
        }
        self.plans: dict[str, Plan] = {k: build_plan(Spec.model_validate(s))
                                       for k, s in self.specs.items()}
        self.bodies = {k: json.dumps(s).encode() for k, s in self.specs.items()}
        self.recipes = {}
        for key in ("llama_bf16", "llama_f32", "convmlp_f32"):
            self.recipes[key] = folder / f"{key}.recipe.json"
            self.recipes[key].write_text(json.dumps(torch_recipe(self.plans[key])))
        self.one_worker = ThreadPoolExecutor(1, thread_name_prefix="bench-1")
        self.two_workers = ThreadPoolExecutor(os.cpu_count() or 2, thread_name_prefix="bench-n")
        for _ in ChunkStream(self.plans["llama_bf16"], executor=self.two_workers):
            break  # numba kernels loaded before anything is timed
        self.server = sides.Server()
        self.ceiling = limits.CeilingServer(self.plans["llama_bf16"].total_bytes)
        self.transports = [limits.CeilingServer(config.transport_bytes, *variant)
                           for variant in TRANSPORTS]

    def models(self) -> dict[str, dict[str, int]]:
        return {k: {"parameters": p.total_parameters, "bytes": p.total_bytes}
                for k, p in self.plans.items()}

    def close(self) -> None:
        self.server.stop()
        self.ceiling.stop()
        for transport in self.transports:
            transport.stop()
        self.one_worker.shutdown()
        self.two_workers.shutdown()

    def _engine(self, key: str, executor: ThreadPoolExecutor, **kwargs: bool) -> dict:
        figures = sides.engine_generate(self.plans[key], executor, **kwargs)
        figures["elements"] = self.plans[key].total_parameters
        return figures

    def _latency(self, path: str, spec: dict, run: int, fresh: bool) -> dict:
        # A seed range of its own per run: "fresh" requests never hit the plan cache.
        spec = {**spec, "seed": 100_000 * (run + 1) + (50_000 if path == "/v1/plan" else 0)}
        p50, p99 = latency_ms(self.server.port, path, spec, self.config.requests, fresh)
        return {"p50_ms": p50, "p99_ms": p99}

    def cases(self, run: int) -> dict[str, Callable[[], dict]]:
        """Every measurement of one run, by name."""
        cases: dict[str, Callable[[], dict]] = {}
        for key in ("llama_bf16", "llama_f32", "convmlp_f32"):
            plan, body = self.plans[key], self.bodies[key]
            out = self.files / f"{key}.safetensors"
            cases[f"torch:{key}"] = lambda k=key, o=out: sides.torch_peer(self.recipes[k], o)
            cases[f"http:{key}"] = lambda b=body: sides.http_peak_rss(self.server, b)
            cases[f"http_file:{key}"] = lambda b=body, o=out: sides.http_stream(
                self.server, b, out_path=o)
            cases[f"engine_file:{key}"] = lambda p=plan, o=out: sides.engine_file(p, o)
            cases[f"engine:{key}"] = lambda k=key: self._engine(k, self.two_workers)
        bf16 = "llama_bf16"
        cases["http:llama7b_bf16"] = lambda: sides.http_peak_rss(
            self.server, self.bodies["llama7b_bf16"])
        cases[f"http_report:{bf16}"] = lambda: sides.http_stream(
            self.server, self.bodies[bf16], accept="multipart/mixed")
        for key in (bf16, "convmlp_f32"):
            cases[f"engine_1worker:{key}"] = lambda k=key: self._engine(k, self.one_worker)
            cases[f"engine_stats:{key}"] = lambda k=key: self._engine(k, self.two_workers,
                                                                      with_stats=True)
        cases[f"engine_report:{bf16}"] = lambda: self._engine(bf16, self.two_workers,
                                                              with_stats=True, observe=True)
        nbytes = self.plans[bf16].total_bytes
        cases["limit_sfc64"] = lambda: limits.raw_bits(nbytes, "SFC64")
        cases["limit_philox"] = lambda: limits.raw_bits(nbytes, "Philox")
        cases["limit_memcpy"] = lambda: limits.MemcpyBuffers(nbytes).copy()
        cases["limit_http"] = self.ceiling.stream
        for transport in self.transports:
            cases[f"transport:{transport.label}"] = lambda t=transport: t.stream(times=4)
        plan_spec = transformer_spec(32)
        cases["latency_plan"] = lambda: self._latency("/v1/plan", plan_spec, run, True)
        cases["latency_plan_cached"] = lambda: self._latency("/v1/plan", plan_spec, run, False)
        cases["latency_init"] = lambda: self._latency("/v1/init", SMALL_MLP, run, True)
        cases["latency_init_cached"] = lambda: self._latency("/v1/init", SMALL_MLP, run, False)
        return cases


def run_all(bench: Benchmark, runs: int, loads: list[float]) -> dict[str, list[dict]]:
    samples: dict[str, list[dict]] = {}
    for run in range(runs):
        cases = bench.cases(run)
        order = list(cases)
        random.Random(run).shuffle(order)
        started = time.perf_counter()
        for name in order:
            samples.setdefault(name, []).append(cases[name]())
        loads.append(os.getloadavg()[0])
        print(f"run {run + 1}/{runs}: {time.perf_counter() - started:.0f} s, "
              f"load average {loads[-1]:.2f}", flush=True)
    return samples


def write_readme(table: str) -> None:
    text = README.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{README} has no {BEGIN} ... {END} markers")
    head, rest = text.split(BEGIN, 1)
    README.write_text(head + BEGIN + "\n" + table + END + rest.split(END, 1)[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 2 runs (CI)")
    parser.add_argument("--runs", type=int, help="runs (default 5, quick 2)")
    parser.add_argument("--no-readme", action="store_true", help="leave README.md alone")
    parser.add_argument("--wait-load", type=float, default=0.0,
                        help="first wait until the load average is below this")
    parser.add_argument("--wait-max-s", type=float, default=1800.0)
    parser.add_argument("--files-dir", type=Path,
                        help="where files are written (default: a temporary directory)")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    runs = args.runs or config.runs
    if args.wait_load:
        wait_for_quiet(args.wait_load, args.wait_max_s)
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="weightinit-bench-") as folder:
        bench = Benchmark(config, Path(folder), args.files_dir or Path(folder))
        try:
            samples = run_all(bench, runs, loads)
        finally:
            bench.close()
    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
            "quick": args.quick, "runs": runs, "cpus": os.cpu_count(),
            "cpu_model": cpu_model(), "models": bench.models(),
            "files_fs": filesystem(args.files_dir or Path(tempfile.gettempdir())),
            "load": {"start": loads[0], "max": max(loads), "end": os.getloadavg()[0],
                     "per_run": loads[1:]}}
    table = render_markdown(samples, meta)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    stamp = "quick-latest" if args.quick else meta["date"].replace(":", "")  # CI overwrites
    (RESULTS / f"{stamp}.json").write_text(
        json.dumps({"meta": meta, "samples": samples}, indent=1))
    if not args.quick and not args.no_readme:
        write_readme(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
