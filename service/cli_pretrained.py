"""``weightinit pretrained``: a Hugging Face config.json in, a from_pretrained-ready
directory out. Apart from the other commands: with ``--server`` it needs the client and
the directory layout only, not the planning engine (whose import is a noticeable part of
the command's time on a small machine)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import ValidationError
from weightinit.core.errors import SpecError
from weightinit.service.cli_refusals import Refusal


def run_pretrained(args: argparse.Namespace) -> int:
    """``weightinit pretrained``: config.json in, a from_pretrained-ready directory out."""
    from weightinit.service.client.http import WeightinitError
    from weightinit.service.pretrained import save_pretrained

    try:
        config = json.loads(Path(args.config).read_text())
    except json.JSONDecodeError as error:
        raise Refusal(f"invalid config: {args.config}: {error}") from None
    if not isinstance(config, dict):
        raise Refusal(f"invalid config: {args.config}: expected a JSON object")
    try:
        result = save_pretrained(
            config, args.output, seed=args.seed, dtype=args.dtype,
            architecture=args.architecture, init_recipe=args.init_recipe,
            max_shard_size=args.max_shard_size, server=args.server, token=args.token,
            progress=not args.quiet and bool(args.server))
    except WeightinitError as error:  # the server refused (its message names the field)
        print(f"weightinit: {error.message}", file=sys.stderr)
        return 2 if error.status and 400 <= error.status < 500 else 1
    except ValueError as error:
        if isinstance(error, (SpecError, ValidationError)):
            raise
        raise Refusal(f"invalid argument: {error}") from None
    if args.json:
        print(json.dumps(result, indent=2))
    elif not args.quiet:
        for file in result["files"]:
            print(f"{file['sha256']}  {file['file']}  ({file['bytes']} bytes, "
                  f"{file['tensors']} tensors)")
        print(f"wrote {result['directory']}: {result['total_parameters']} parameters in "
              f"{len(result['files'])} file(s)", file=sys.stderr)
    return 0
