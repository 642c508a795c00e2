"""The ``weightinit`` command line: serve, init, plan, verify, spec, report.

A spec file is the same JSON as the HTTP body. Errors in a spec print the file, line and
field that is wrong and exit 2; ``verify`` exits 1 for a file that differs and 2 for one
it cannot read.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from weightinit import __version__

EXIT_MISMATCH = 1
EXIT_BAD_SPEC = 2
EXIT_CANNOT_READ = 2  # verify: a file that cannot be read is not a file that differs


def select_item(text: str) -> str | dict[str, Any]:
    """A ``--select`` value: ``NAME`` (the whole tensor) or ``NAME@OFFSET:SHAPE`` with
    comma-separated ints, e.g. ``embed.weight@8001,0:8001,2048`` (a region)."""
    name, at, region = text.rpartition("@")
    if not at:
        return text
    offset, colon, shape = region.partition(":")
    try:
        if not colon:
            raise ValueError
        return {"name": name, "offset": [int(v) for v in offset.split(",") if v],
                "shape": [int(v) for v in shape.split(",") if v]}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected NAME or NAME@OFFSET:SHAPE, e.g. w@0,128:64,128") from None


def _select_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--select", action="append", type=select_item, metavar="NAME[@OFFSET:SHAPE]",
        help="only this tensor, or the region of it at OFFSET of SHAPE (comma-separated, "
             "e.g. embed.weight@8001,0:8001,2048); repeatable; replaces the spec's select")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="weightinit", description=__doc__)
    parser.add_argument("--version", action="version", version=f"weightinit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service (settings: WEIGHTINIT_*)")
    serve.add_argument("--host", default=None, help="default from WEIGHTINIT_HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="default WEIGHTINIT_PORT or 8000")
    serve.add_argument("--workers", type=int, default=None, help="uvicorn worker processes")
    serve.set_defaults(run="serve")

    init = commands.add_parser("init", help="generate a safetensors file from a spec")
    init.add_argument("spec", help="spec JSON file, or - for standard input")
    init.add_argument("-o", "--output", required=True, help="the .safetensors file to write")
    init.add_argument("--report", help="also write the report JSON here")
    init.add_argument("--server", help="generate on a weightinit server at this URL")
    init.add_argument("--token", default=os.environ.get("WEIGHTINIT_TOKEN"),
                      help="bearer token for --server (default: $WEIGHTINIT_TOKEN, which "
                      "keeps it out of the process list)")
    init.add_argument("-q", "--quiet", action="store_true")
    _select_option(init)
    init.set_defaults(run="init")

    plan = commands.add_parser("plan", help="print the plan (a table of tensors, shapes, "
                               "initializers, std and totals), generating nothing")
    plan.add_argument("spec")
    plan.add_argument("--json", action="store_true", help="the plan document as JSON instead")
    plan.add_argument("-o", "--output", help="write it here instead of stdout")
    _select_option(plan)
    plan.set_defaults(run="plan")

    verify = commands.add_parser(
        "verify", help="check a file is bit-for-bit the spec's output (exit 0 same, 1 "
        "differs, 2 cannot read); without SPEC, against the spec the file carries")
    verify.add_argument("paths", nargs="+", metavar="[SPEC] FILE")
    verify.set_defaults(run="verify")

    spec = commands.add_parser("spec", help="print the spec a weightinit file carries")
    spec.add_argument("file")
    spec.add_argument("-o", "--output", help="write the JSON here instead of stdout")
    spec.set_defaults(run="spec")

    report = commands.add_parser("report", help="generate and print observed statistics")
    report.add_argument("spec")
    report.add_argument("-o", "--output", help="write the JSON here instead of stdout")
    report.add_argument("--plot", help="also draw the per-layer variance chart to this PNG")
    _select_option(report)
    report.set_defaults(run="report")

    pretrained = commands.add_parser(
        "pretrained", help="write a from_pretrained-ready directory for a Hugging Face "
        "config.json (needs the [hf] extra here, or on --server)")
    pretrained.add_argument("config", help="the model's config.json")
    pretrained.add_argument("--seed", type=int, required=True)
    pretrained.add_argument("-o", "--output", required=True, help="the directory to write")
    pretrained.add_argument("--dtype", default="float32",
                            choices=["float32", "bfloat16", "float16", "float64"])
    pretrained.add_argument("--architecture", help="model class (default: the config's "
                            "architectures[0], else the base model)")
    pretrained.add_argument("--init-recipe", default="family", choices=["family", "torch"],
                            help="the family's own init (default) or torch's constructor "
                            "defaults")
    pretrained.add_argument("--max-shard-size", default="5GB",
                            help="shard above this size, as save_pretrained (default 5GB)")
    pretrained.add_argument("--server", help="fetch the weights from a weightinit server")
    pretrained.add_argument("--token", default=os.environ.get("WEIGHTINIT_TOKEN"),
                            help="bearer token for --server (default: $WEIGHTINIT_TOKEN)")
    pretrained.add_argument("--json", action="store_true",
                            help="print the result (files, sha256) as JSON")
    pretrained.add_argument("-q", "--quiet", action="store_true")
    pretrained.set_defaults(run="pretrained")

    commands.add_parser("layers", help="list the layer types and their fields").set_defaults(
        run="layers")
    commands.add_parser("initializers", help="list the initializers, formulas and "
                        "parameters").set_defaults(run="initializers")
    return parser


def _configure_engine() -> str | None:
    """Apply the engine's ``WEIGHTINIT_*`` settings (threads, numba); an error message if
    the environment holds an invalid one."""
    from pydantic import ValidationError
    from weightinit.service.server.settings import Settings

    try:
        Settings().configure_engine()
    except ValidationError as error:
        problems = "; ".join(f"WEIGHTINIT_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
                             for e in error.errors())
        return f"weightinit: invalid setting: {problems}"
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The engine is imported only now: --help and --version need none of it.
    from pydantic import ValidationError
    from weightinit.core.errors import SpecError
    from weightinit.service.cli_refusals import InvalidSpec, Refusal

    # What runs no engine here (serve configures its own; pretrained --server fetches)
    # neither configures nor imports it.
    remote = args.run == "pretrained" and args.server
    if args.run != "serve" and not remote and (problem := _configure_engine()):
        print(problem, file=sys.stderr)
        return EXIT_BAD_SPEC
    try:
        if args.run == "pretrained":
            from weightinit.service.cli_pretrained import run_pretrained

            return run_pretrained(args)
        from weightinit.service import cli_commands

        return getattr(cli_commands, f"_cmd_{args.run}")(args)
    except InvalidSpec as error:
        for line in error.lines():
            print(line, file=sys.stderr)
        return EXIT_BAD_SPEC
    except Refusal as error:
        print(f"weightinit: {error}", file=sys.stderr)
        return EXIT_BAD_SPEC
    except ValidationError as error:
        for item in error.errors():
            loc = ".".join(str(part) for part in item["loc"])
            print(f"invalid spec: {loc}: {item['msg']}", file=sys.stderr)
        return EXIT_BAD_SPEC
    except SpecError as error:
        print(f"invalid spec: {error}", file=sys.stderr)
        return EXIT_BAD_SPEC
    except BrokenPipeError:  # ``weightinit layers | head``: the reader has what it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as error:  # a spec or output file that cannot be read or written
        print(f"weightinit: {error}", file=sys.stderr)
        return EXIT_BAD_SPEC


if __name__ == "__main__":
    sys.exit(main())
