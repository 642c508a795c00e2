"""Config in, weights in a ready model in memory: weightinit's Hugging Face route against
``from_config``, side by side in one run.

    python benchmarks/hf_route.py [--rounds 3] [--quick]

The model is the issue's ~1B Llama (hidden 2048, 16 layers, intermediate 5632, vocab
32000, 16 heads with 8 KV heads, untied head) in bfloat16. A ``weightinit serve`` runs on
127.0.0.1 for the whole run; each side runs in a fresh child process, timed from after
its imports (the import time is reported apart), in a shuffled order per round:

* ``from_config``: ``AutoModelForCausalLM.from_config(config, dtype=bfloat16)`` (the
  family's ``_init_weights`` on the CPU).
* ``weightinit_from_config``: ``weightinit.hf.from_config(config, seed=1, server=URL)``,
  the one call (the fetch starts first, on a second thread, while the model's code is
  imported and the model built in ``empty_weights()``; tensors received as torch's).
* ``http``: the ``huggingface`` spec sent with ``Client(url, parallel=P).init`` in a
  thread while the model is built in ``empty_weights()`` (parameters on meta), then
  ``load_weights`` (the arrays become the parameters: no copy).
* ``http_serial``: the same, fetch then build (no overlap, one stream): the route as
  a first-time user writes it.
* ``cli``: ``weightinit pretrained CONFIG --seed 1 -o DIR --server URL`` into tmpfs,
  then the model built in ``empty_weights()`` and ``load_weights(DIR/model.safetensors)``
  (only when the installed CLI has ``pretrained``).

Before the rounds, one ``/v1/plan`` of the config: the first trace (the server starts its
tracing worker, which imports torch and transformers and builds the model on the meta
device), timed and reported apart with the server's and the worker's peak RSS; the
rounds then measure the steady state (the trace cached by the server).

Reported per side: seconds (median, min-max), CPU seconds (the child's own plus, for the
weightinit sides, the server's during the side: on a shared machine, wall time follows
the CPU share each side gets), the child's peak RSS (``VmHWM``) and that peak above its
RSS after imports, against the model's bytes; the server's peak RSS (reset before each
weightinit side). Ratios are per round, then summarised. Figures go to
benchmarks/README.md by hand.
"""

from __future__ import annotations

import argparse
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

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.sides import Server, cpu_seconds, reset_peak_rss, status_kib  # noqa: E402

LLAMA_1B = {"model_type": "llama", "architectures": ["LlamaForCausalLM"],
            "hidden_size": 2048, "num_hidden_layers": 16, "intermediate_size": 5632,
            "vocab_size": 32000, "num_attention_heads": 16, "num_key_value_heads": 8,
            "max_position_embeddings": 2048, "tie_word_embeddings": False,
            "torch_dtype": "bfloat16"}
QUICK = {**LLAMA_1B, "hidden_size": 512, "num_hidden_layers": 4, "intermediate_size": 1408,
         "num_attention_heads": 8, "num_key_value_heads": 4}
SEED = 1


def _rss_mib(key: str) -> float:
    return status_kib(os.getpid(), key) / 1024


# --- child side ----------------------------------------------------------------------------

def child(side: str, config_dict: dict[str, Any], url: str, parallel: int,
          workdir: str) -> dict[str, Any]:
    """Run one side in this (fresh) process; its figures as a dict."""
    started = time.perf_counter()
    import torch
    import transformers
    from weightinit.service.client.client import Client

    import weightinit.hf
    from weightinit.torch import empty_weights, load_weights

    imported = time.perf_counter()
    baseline = _rss_mib("VmRSS")
    config = (transformers.AutoConfig.for_model(**config_dict)
              if side != "weightinit_from_config" else None)
    spec = {"seed": SEED, "dtype": "bfloat16", "huggingface": {"config": config_dict}}
    phases: dict[str, float] = {}

    def build() -> Any:
        begin = time.perf_counter()
        with empty_weights():
            model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        phases["build_s"] = time.perf_counter() - begin
        return model

    if side == "from_config":
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    elif side == "weightinit_from_config":
        model = weightinit.hf.from_config(config_dict, seed=SEED, server=url)
    elif side == "http":
        from concurrent.futures import ThreadPoolExecutor

        with Client(url, parallel=parallel) as client, ThreadPoolExecutor(1) as pool:
            arrays = pool.submit(client.init, spec)
            model = build()
            waited = time.perf_counter()
            weights = arrays.result()
            phases["fetch_wait_s"] = time.perf_counter() - waited
        begin = time.perf_counter()
        load_weights(model, weights)
        phases["load_s"] = time.perf_counter() - begin
    elif side == "http_serial":
        begin = time.perf_counter()
        with Client(url) as client:
            weights = client.init(spec)
        phases["fetch_s"] = time.perf_counter() - begin
        model = build()
        begin = time.perf_counter()
        load_weights(model, weights)
        phases["load_s"] = time.perf_counter() - begin
    elif side == "cli":
        config_path = Path(workdir) / "config.json"
        config_path.write_text(json.dumps(config_dict))
        out = Path(workdir) / "pretrained"
        begin = time.perf_counter()
        subprocess.run([sys.executable, "-m", "weightinit", "pretrained", str(config_path),
                        "--seed", str(SEED), "--dtype", "bfloat16", "-o", str(out),
                        "--server", url], check=True, capture_output=True)
        phases["cli_s"] = time.perf_counter() - begin
        model = build()
        begin = time.perf_counter()
        load_weights(model, out / "model.safetensors")
        phases["load_s"] = time.perf_counter() - begin
    else:
        raise SystemExit(f"unknown side {side}")
    seconds = time.perf_counter() - imported
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the cli side's command
    phases["cpu_s"] = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    assert not any(p.is_meta for p in model.parameters())
    peak = _rss_mib("VmHWM")
    return {"side": side, "seconds": seconds, "import_s": imported - started,
            "peak_rss_mib": peak, "peak_above_imports_mib": peak - baseline,
            "model_mib": model_bytes / 2**20, **phases}


# --- parent --------------------------------------------------------------------------------

def has_pretrained_cli() -> bool:
    done = subprocess.run([sys.executable, "-m", "weightinit", "pretrained", "--help"],
                          capture_output=True)
    return done.returncode == 0


def run_side(side: str, config: dict[str, Any], server: Server, parallel: int
             ) -> dict[str, Any]:
    resettable = side != "from_config" and reset_peak_rss(server.pid)
    server_cpu = cpu_seconds(server.pid)
    with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None
                                     ) as workdir:
        done = subprocess.run(
            [sys.executable, __file__, "--child", side, "--config", json.dumps(config),
             "--url", f"http://127.0.0.1:{server.port}", "--parallel", str(parallel),
             "--workdir", workdir],
            capture_output=True, text=True, timeout=1800,
            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if done.returncode != 0:
        raise SystemExit(f"{side} failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    if side != "from_config":
        figures["server_cpu_s"] = cpu_seconds(server.pid) - server_cpu
    figures["total_cpu_s"] = figures["cpu_s"] + figures.get("server_cpu_s", 0.0)
    if resettable:
        figures["server_peak_rss_mib"] = status_kib(server.pid, "VmHWM") / 1024
    return figures


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(child) for child in text)
    return found


def first_trace(config: dict[str, Any], server: Server) -> str:
    """The first ``/v1/plan`` of the config: the tracing worker started and the model
    traced; the server's peak RSS through it and the worker's."""
    from weightinit.service.client.client import Client

    reset_peak_rss(server.pid)
    spec = {"seed": SEED, "dtype": "bfloat16", "huggingface": {"config": config}}
    begin = time.perf_counter()
    with Client(f"http://127.0.0.1:{server.port}") as client:
        tensors = len(client.plan(spec)["tensors"])
    seconds = time.perf_counter() - begin
    workers = _children(server.pid)
    worker = (f"{status_kib(workers[0], 'VmHWM') / 1024:.0f} MiB" if workers
              else "(exited)")
    return (f"first trace ({tensors} tensors): {seconds:.2f} s; server peak RSS "
            f"{status_kib(server.pid, 'VmHWM') / 1024:.0f} MiB, tracing worker peak RSS "
            f"{worker}")


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child")
    parser.add_argument("--config")
    parser.add_argument("--url")
    parser.add_argument("--workdir")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a small Llama (CI)")
    parser.add_argument("--sides",
                        default="from_config,weightinit_from_config,http,http_serial,cli")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, json.loads(args.config), args.url, args.parallel,
                               args.workdir)))
        return
    config = QUICK if args.quick else LLAMA_1B
    sides = args.sides.split(",")
    if "cli" in sides and not has_pretrained_cli():
        print("(no `weightinit pretrained` in this install: the cli side is skipped)")
        sides.remove("cli")
    server = Server()
    results: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    try:
        print(first_trace(config, server), flush=True)
        for round_index in range(args.rounds):
            order = random.Random(round_index).sample(sides, len(sides))
            for side in order:
                results[side].append(run_side(side, config, server, args.parallel))
                print(f"round {round_index + 1} {side}: "
                      f"{results[side][-1]['seconds']:.2f} s", flush=True)
    finally:
        server.stop()
    report(results)


def report(results: dict[str, list[dict[str, Any]]]) -> None:
    print("\n| side | seconds | ratio from_config / side | CPU s (with the server's) "
          "| CPU ratio | import s | peak RSS MiB "
          "| above imports MiB | model MiB | server peak RSS MiB | phases (median s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    anchor = [r["seconds"] for r in results.get("from_config", [])]
    for side, runs in results.items():
        seconds = [r["seconds"] for r in runs]
        ratio = (summary([a / s for a, s in zip(anchor, seconds, strict=True)])
                 if anchor else "-")
        server = [r["server_peak_rss_mib"] for r in runs if "server_peak_rss_mib" in r]
        cpu = [r["total_cpu_s"] for r in runs]
        anchor_cpu = [r["total_cpu_s"] for r in results.get("from_config", [])]
        cpu_ratio = (summary([a / c for a, c in zip(anchor_cpu, cpu, strict=True)])
                     if anchor_cpu else "-")
        phase_names = [k for k in runs[0] if k.endswith("_s")
                       and k not in ("import_s", "total_cpu_s")]
        phases = ", ".join(f"{k[:-2]} {statistics.median(r[k] for r in runs):.2f}"
                           for k in phase_names)
        server_cell = f"{max(server):.0f}" if server else "-"
        print(f"| {side} | {summary(seconds)} | {ratio} | {summary(cpu)} | {cpu_ratio} | "
              f"{statistics.median(r['import_s'] for r in runs):.2f} | "
              f"{statistics.median(r['peak_rss_mib'] for r in runs):.0f} | "
              f"{statistics.median(r['peak_above_imports_mib'] for r in runs):.0f} | "
              f"{runs[0]['model_mib']:.0f} | {server_cell} | {phases} |")

if __name__ == "__main__":
    main()
