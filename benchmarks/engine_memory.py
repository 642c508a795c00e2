"""Peak memory and wall time of ``weightinit init`` writing a ~2 GB float32 file.

The issue's target: the CLI's peak RSS stays under 200 MB whatever the model size,
because the header is computed from the plan and the data written in bounded chunks.
For comparison the same file is made the usual way, in a child process too: torch
allocates the tensors, ``torch.nn.init`` fills them, ``safetensors.torch.save_file``
writes them.

Peak RSS is the kernel's own figure for each child (``ru_maxrss`` from ``wait4``, the
high-water mark of its resident set), and the ``VmHWM`` line of ``/proc/<pid>/status`` is
polled while it runs as a cross-check. Run it from the repository root::

    python benchmarks/engine_memory.py [--blocks 32] [--width 4096] [--keep]

This is a measurement script, not a test: it prints a table and exits non-zero only if
the CLI's peak RSS is over the target.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TARGET_PEAK_MB = 200  # decimal megabytes, the stricter reading (190.7 MiB)


def spec(blocks: int, width: int) -> dict:
    """``blocks`` square linear layers (kaiming_normal weight, uniform bias) + a head."""
    return {
        "seed": 2024,
        "convention": "torch",
        "dtype": "float32",
        "layers": [
            {"type": "repeat", "name": "blocks", "count": blocks, "layers": [
                {"type": "linear", "name": "proj", "in_features": width, "out_features": width,
                 "weight_init": {"name": "kaiming_normal", "nonlinearity": "relu"}},
            ]},
            {"type": "tensor", "name": "head.weight", "shape": [width, width],
             "init": {"name": "truncated_normal", "std": 0.02}},
        ],
    }


def torch_child(spec_path: str, out_path: str) -> None:
    """The baseline: what a torch user writes to get the same model into a file."""
    import math

    import torch
    from safetensors.torch import save_file

    document = json.loads(Path(spec_path).read_text())
    repeat, head = document["layers"]
    width = repeat["layers"][0]["in_features"]
    tensors = {}
    for index in range(repeat["count"]):
        weight = torch.empty(width, width)
        torch.nn.init.kaiming_normal_(weight, nonlinearity="relu")
        bias = torch.empty(width)
        torch.nn.init.uniform_(bias, -1 / math.sqrt(width), 1 / math.sqrt(width))
        tensors[f"blocks.{index}.proj.weight"] = weight
        tensors[f"blocks.{index}.proj.bias"] = bias
    head_weight = torch.empty(width, width)
    torch.nn.init.trunc_normal_(head_weight, std=0.02, a=-0.04, b=0.04)
    tensors[head["name"]] = head_weight
    save_file(tensors, out_path)


def _poll_hwm(pid: int, seen: list[int], stop: threading.Event) -> None:
    """Keep the largest VmHWM (kB) read from /proc while the child lives."""
    status = Path(f"/proc/{pid}/status")
    while not stop.is_set():
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    seen[0] = max(seen[0], int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError, ValueError):
            return
        time.sleep(0.05)


def measure(command: list[str]) -> dict[str, float]:
    """Run ``command``; its wall time, peak RSS (wait4) and polled VmHWM, in s and MiB."""
    start = time.perf_counter()
    child = subprocess.Popen(command)
    seen, stop = [0], threading.Event()
    poller = threading.Thread(target=_poll_hwm, args=(child.pid, seen, stop), daemon=True)
    poller.start()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    stop.set()
    poller.join()
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{command[0]} failed with exit code {child.returncode}")
    return {"wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024, "vmhwm_mib": seen[0] / 1024}


def weightinit_command() -> list[str]:
    script = Path(sys.executable).with_name("weightinit")
    if script.exists():
        return [str(script)]
    return [shutil.which("weightinit") or "weightinit"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=32)
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--keep", action="store_true", help="keep the files")
    parser.add_argument("--torch-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.torch_child:
        torch_child(*args.torch_child)
        return 0

    folder = Path(tempfile.mkdtemp(prefix="weightinit-bench-"))
    try:
        spec_path = folder / "spec.json"
        spec_path.write_text(json.dumps(spec(args.blocks, args.width)))
        ours_path, torch_path = folder / "weightinit.safetensors", folder / "torch.safetensors"
        # Warm-up: numba's on-disk kernel cache, so the figures are of a steady state.
        subprocess.run([*weightinit_command(), "plan", str(spec_path)], check=True,
                       capture_output=True)
        ours = measure([*weightinit_command(), "init", str(spec_path), "-o", str(ours_path),
                        "-q"])
        theirs = measure([sys.executable, __file__, "--torch-child", str(spec_path),
                          str(torch_path)])
        size_gb = ours_path.stat().st_size / 1e9
        print(f"file: {size_gb:.2f} GB float32 ({args.blocks} x {args.width}^2 + head), "
              f"{os.cpu_count()} cores")
        print(f"{'':24}{'wall s':>10}{'peak RSS MiB':>15}{'VmHWM MiB':>12}")
        for label, row in (("weightinit init (CLI)", ours), ("torch + save_file", theirs)):
            print(f"{label:24}{row['wall_s']:>10.2f}{row['peak_rss_mib']:>15.1f}"
                  f"{row['vmhwm_mib']:>12.1f}")
        print(f"ratio torch/weightinit: wall {theirs['wall_s'] / ours['wall_s']:.2f}x, "
              f"peak RSS {theirs['peak_rss_mib'] / ours['peak_rss_mib']:.1f}x")
        peak_mb = ours["peak_rss_mib"] * 2**20 / 1e6
        ok = peak_mb < TARGET_PEAK_MB
        print(f"weightinit peak RSS {peak_mb:.1f} MB; target < {TARGET_PEAK_MB} MB: "
              f"{'met' if ok else 'NOT met'}")
        return 0 if ok else 1
    finally:
        if args.keep:
            print(f"files kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
