"""What every example shares: its command line, its spec file, and fetching the weights.

    python examples/torch_mlp.py --server http://127.0.0.1:8000 [--token T] [--output F]

The server comes from ``--server``, else ``WEIGHTINIT_URL``, else a local default.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from weightinit import Client

HERE = Path(__file__).resolve().parent


def parse_args(description: str, *, keras: bool = False) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    if keras:
        parser.add_argument("--from-model", action="store_true",
                            help="send the model's to_json() (keras_model) instead of the spec")
    parser.add_argument("--server", default=os.environ.get("WEIGHTINIT_URL",
                                                           "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("WEIGHTINIT_TOKEN"))
    parser.add_argument("--output", help="also keep the safetensors file here")
    return parser.parse_args()


def load_spec(name: str) -> dict[str, Any]:
    """The spec JSON that sits beside the example (``name``.json)."""
    return json.loads((HERE / f"{name}.json").read_text())


def fetch_weights(args: argparse.Namespace, spec: dict[str, Any]) -> Any:
    """The spec's weights from the server: written to ``--output`` (with a progress bar)
    and returned as that path, or, without ``--output``, returned as arrays in memory.
    ``examples/torch_mlp.py`` spells the same calls out."""
    with Client(args.server, token=args.token) as client:
        if args.output:
            client.init(spec, args.output, progress=True)
            return args.output
        return client.init(spec)
