"""How long the ``weightinit`` command takes to start and to make a small model.

Each case runs as a fresh process (the user's experience, interpreter start included),
interleaved with its anchors in one invocation, so machine load falls on all alike:
``python -c pass`` (the interpreter alone) and the torch in-process way of making the
same small model (``import torch``, ``nn.Linear`` modules, ``safetensors.torch.save_file``).
Prints the median and min-max of each over the runs, and the ratios to the torch anchor.

    python benchmarks/cli_start.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
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


def command() -> list[str]:
    found = shutil.which("weightinit", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "weightinit"]


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="cli-start-"))
    spec = folder / "mlp.json"
    spec.write_text(json.dumps(MLP))
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "weightinit --help": [*command(), "--help"],
        "weightinit plan (MLP)": [*command(), "plan", str(spec)],
        "weightinit init (MLP, 815 kB)": [*command(), "init", str(spec), "-q",
                                           "-o", str(folder / "w.safetensors")],
        "torch: import, Linear x2, save_file": [
            sys.executable, "-c", TORCH_MLP.format(out=str(folder / "t.safetensors"))],
    }
    for args in cases.values():  # warm the OS caches and numba's on-disk kernels once
        timed(args)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(options.runs):
        for name, args in cases.items():
            times[name].append(timed(args))
    anchor = statistics.median(times["torch: import, Linear x2, save_file"])
    print(f"{'case':40} {'median s':>9} {'min-max s':>14} {'/ torch':>8}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:40} {median:9.3f} {min(values):6.3f}-{max(values):6.3f} "
              f"{median / anchor:8.2f}")
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
