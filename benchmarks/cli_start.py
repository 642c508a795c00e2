"""How long the ``weightinit`` command takes to start and to make a small model.

Each case runs as a fresh process (the user's experience, interpreter start included),
interleaved with its anchors in one invocation, so machine load falls on all alike:
``python -c pass`` (the interpreter alone) and the torch in-process way of making the
same small model (``import torch``, ``nn.Linear`` modules, ``safetensors.torch.save_file``).
Prints the median and min-max of each over the runs, and the ratios to the torch anchor.
Side by side with the default ``init`` (numba loaded only once the work pays for it), the
same command with numba loaded first, as every ``init`` did before the lazy load.

``--crossover`` adds the models around ``kernels.LAZY_LOAD_ELEMENTS``: ``init`` of a
single normal tensor of each size by the default path, with numba loaded first, and
with the numpy reference only (``WEIGHTINIT_DISABLE_NUMBA=1``), to check the threshold.

    python benchmarks/cli_start.py [--runs 7] [--crossover]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MLP = {"seed": 1, "convention": "torch", "layers": [
    {"type": "linear", "name": "fc1", "in_features": 784, "out_features": 256},
    {"type": "linear", "name": "fc2", "in_features": 256, "out_features": 10}]}
TORCH_MLP = (
    "import torch\nfrom safetensors.torch import save_file\n"
    "m = torch.nn.Sequential()\n"
    "m.add_module('fc1', torch.nn.Linear(784, 256))\n"
    "m.add_module('fc2', torch.nn.Linear(256, 10))\n"
    "save_file(m.state_dict(), {out!r})\n"
)


# The CLI as a process would run it, after loading numba first (the behaviour before
# numba was loaded lazily).
NUMBA_FIRST = (
    "import runpy, sys\n"
    "from weightinit.core.rng import kernels\n"
    "kernels.load_numba()\n"
    "sys.argv = ['weightinit', *sys.argv[1:]]\n"
    "runpy.run_module('weightinit.service.cli', run_name='__main__')\n"
)
CROSSOVER_ELEMENTS = (1 << 20, 1 << 21, 1 << 22, 1 << 23, 1 << 24)


def command() -> list[str]:
    found = shutil.which("weightinit", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "weightinit"]


def timed(args: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=env)
    return time.perf_counter() - start


def report(times: dict[str, list[float]], anchor_name: str, label: str) -> None:
    anchor = statistics.median(times[anchor_name])
    print(f"{'case':44} {'median s':>9} {'min-max s':>14} {'/ ' + label:>15}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:44} {median:9.3f} {min(values):6.3f}-{max(values):6.3f} "
              f"{median / anchor:15.2f}")


def measure(cases: dict[str, tuple[list[str], dict[str, str] | None]],
            runs: int) -> dict[str, list[float]]:
    for args, env in cases.values():  # warm the OS caches and numba's on-disk kernels
        timed(args, env)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, (args, env) in cases.items():
            times[name].append(timed(args, env))
    return times


def crossover(folder: Path, runs: int) -> None:
    numpy_only = {**os.environ, "WEIGHTINIT_DISABLE_NUMBA": "1"}
    cases: dict[str, tuple[list[str], dict[str, str] | None]] = {}
    for elements in CROSSOVER_ELEMENTS:
        spec = folder / f"t{elements}.json"
        spec.write_text(json.dumps({"seed": 1, "layers": [
            {"type": "tensor", "name": "w", "shape": [elements // 1024, 1024],
             "init": {"name": "normal", "std": 0.02}}]}))
        out = ["-q", "-o", str(folder / "c.safetensors")]
        label = f"{elements / 2**20:g} Mi elements"
        cases[f"init {label}: default"] = ([*command(), "init", str(spec), *out], None)
        cases[f"init {label}: numba first"] = (
            [sys.executable, "-c", NUMBA_FIRST, "init", str(spec), *out], None)
        cases[f"init {label}: numpy only"] = (
            [*command(), "init", str(spec), *out], numpy_only)
    times = measure(cases, runs)
    print()
    report(times, next(iter(times)), "smallest")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--crossover", action="store_true")
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="cli-start-"))
    spec = folder / "mlp.json"
    spec.write_text(json.dumps(MLP))
    init = ["init", str(spec), "-q", "-o", str(folder / "w.safetensors")]
    cases: dict[str, tuple[list[str], dict[str, str] | None]] = {
        "python -c pass": ([sys.executable, "-c", "pass"], None),
        "weightinit --help": ([*command(), "--help"], None),
        "weightinit plan (MLP)": ([*command(), "plan", str(spec)], None),
        "weightinit init (MLP, 815 kB)": ([*command(), *init], None),
        "weightinit init (MLP), numba loaded first": (
            [sys.executable, "-c", NUMBA_FIRST, *init], None),
        "torch: import, Linear x2, save_file": ([
            sys.executable, "-c", TORCH_MLP.format(out=str(folder / "t.safetensors"))], None),
    }
    print(f"{options.runs} interleaved runs; load average {os.getloadavg()[0]:.2f} at the start")
    report(measure(cases, options.runs), "torch: import, Linear x2, save_file", "torch")
    if options.crossover:
        crossover(folder, options.runs)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
