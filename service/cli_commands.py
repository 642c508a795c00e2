"""What the ``weightinit`` commands do (``weightinit.service.cli`` parses the command line
and imports this module only then, so ``weightinit --help`` loads no engine)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError
from weightinit.core import (
    Plan,
    Spec,
    SpecError,
    build_plan,
    file_size,
    generate_report,
    plan_document,
    report_document,
    verify_file,
    write_file,
)
from weightinit.core.safetensors_io.files import carried_spec
from weightinit.core.safetensors_io.header import HeaderError, read_header
from weightinit.service.cli import EXIT_CANNOT_READ, EXIT_MISMATCH
from weightinit.service.cli_refusals import InvalidSpec, Refusal
from weightinit.service.extras import MissingExtra, require
from weightinit.service.server.error_paths import validation_details


def _planned(path: str, select: list[str | dict[str, Any]] | None = None) -> Plan:
    """The spec file's plan; an error the planner finds is shown at its line too."""
    spec, source = _read_spec(path, select)
    try:
        return build_plan(spec)
    except SpecError as error:
        raise InvalidSpec(error.details(), source) from None


def _read_spec(path: str, select: list[str | dict[str, Any]] | None
               ) -> tuple[Spec, tuple[str, str]]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    source = ("<stdin>" if path == "-" else path, text)
    try:
        if select:
            body = json.loads(text)
            if isinstance(body, dict):
                text = json.dumps({**body, "select": select})
        return Spec.model_validate_json(text), source
    except ValidationError as error:  # locations as the API names them, tags dropped
        raise InvalidSpec(validation_details(error.errors(), text.encode()), source) from None
    except ValueError as error:  # not JSON at all
        raise InvalidSpec([{"loc": [], "msg": f"not JSON: {error}"}], source) from None


def _output_directory_exists(*paths: str | None) -> None:
    """Refuse before any work if an output's directory is missing (not a temp file's)."""
    for path in paths:
        if path and path != "-":
            directory = Path(path).parent
            if not directory.is_dir():
                raise Refusal(f"the output directory {str(directory)!r} does not exist "
                              f"(for {path}); create it first")


def _print_json(document: Any, out: str | None = None) -> None:
    text = json.dumps(document, indent=2)
    if out:
        Path(out).write_text(text + "\n")
    else:
        print(text)


# Above this, ``init`` says how big the file will be before writing it (not a refusal).
LARGE_OUTPUT_BYTES = 8 << 30


def human_bytes(count: int) -> str:
    """``815.0 kB``, ``40.0 GB``: decimal units, as disk sizes are sold."""
    size = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"  # pragma: no cover


def _warn_if_large(file_bytes: int, output: str) -> None:
    """A warning with the size before a very large write, and one if the disk is short."""
    import shutil

    if file_bytes >= LARGE_OUTPUT_BYTES:
        print(f"warning: {output} will be {human_bytes(file_bytes)}", file=sys.stderr)
    try:
        free = shutil.disk_usage(Path(output).parent).free
    except OSError:
        return
    if file_bytes > free:
        print(f"warning: {output} needs {human_bytes(file_bytes)}, and only "
              f"{human_bytes(free)} is free there", file=sys.stderr)


def _progress_bar(total: int, quiet: bool) -> Any:
    """A tqdm bar on a terminal (stderr), else None."""
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="init",
                leave=False)


def _cmd_init(args: argparse.Namespace) -> int:
    spec, source = _read_spec(args.spec, args.select)
    _output_directory_exists(args.output, args.report)
    try:
        plan = build_plan(spec)
    except SpecError as error:
        raise InvalidSpec(error.details(), source) from None
    _warn_if_large(file_size(plan), args.output)
    if args.server:
        from weightinit.service.client.client import Client

        with Client(args.server, token=args.token) as client:
            report = client.init(spec.model_dump(mode="json", exclude_none=True),
                                 path=args.output, progress=not args.quiet,
                                 with_report=bool(args.report))
        if args.report:
            _print_json(report, args.report)
        return 0
    for warning in plan.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    bar = _progress_bar(file_size(plan), args.quiet)
    try:
        observer = write_file(plan, args.output, with_stats=bool(args.report),
                              progress=None if bar is None else bar.update)
    finally:
        if bar is not None:
            bar.close()
    if args.report:
        _print_json(report_document(plan, observer), args.report)
    if not args.quiet:
        print(f"wrote {args.output}: {len(plan.outputs)} tensors, {plan.total_parameters} "
              f"parameters, sha256 {observer.file_sha256.hexdigest()}", file=sys.stderr)
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    document = plan_document(_planned(args.spec, args.select))
    if args.json:
        _print_json(document, args.output)
        return 0
    from weightinit.service.plan_table import plan_table

    table = plan_table(document)
    if args.output:
        Path(args.output).write_text(table + "\n")
    else:
        print(table)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    plan = _planned(args.spec, args.select)
    _output_directory_exists(args.output, args.plot)
    if args.plot:
        _need_extra("matplotlib", "plots", "--plot")
    document = generate_report(plan)
    _print_json(document, args.output)
    if args.plot:
        from weightinit.service.plots import plot_report

        plot_report(document, args.plot)
    return 0


def _need_extra(module: str, extra: str, feature: str) -> None:
    """One line naming the extra to install, instead of an ImportError's traceback."""
    try:
        require(module, extra, feature)
    except MissingExtra as error:
        raise Refusal(str(error)) from None


def _cmd_layers(args: argparse.Namespace) -> int:
    """The layer types and their fields (type, default), from the schema."""
    from weightinit.core.layers import LAYER_TYPES

    for model in LAYER_TYPES:
        types = get_args(model.model_fields["type"].annotation)
        print(f"{' / '.join(types)}: {(model.__doc__ or '').strip().splitlines()[0]}")
        for name, info in model.model_fields.items():
            if name == "type":
                continue
            default = "required" if info.is_required() else f"default {info.default!r}"
            print(f"    {name}: {default}")
    return 0


def _cmd_initializers(args: argparse.Namespace) -> int:
    """The initializers: name, origin, formula and parameters with their defaults."""
    from weightinit.core.initializers import catalogue

    for entry in catalogue():
        print(f"{entry['name']} ({entry['origin']}): {entry['formula']}")
        for name, schema in entry["parameters"].items():
            default = ("required" if name in entry["required"]
                       else f"default {schema.get('default')!r}")
            print(f"    {name}: {default}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    if len(args.paths) > 2:
        raise Refusal("verify takes [SPEC] FILE")
    args.spec, args.file = args.paths if len(args.paths) == 2 else (None, args.paths[0])
    if args.spec is None:  # the spec the file carries
        if not readable_safetensors(args.file):
            return _cmd_verify_unreadable(args.file)
        try:
            spec = Spec.model_validate(carried_spec(args.file))
            plan = build_plan(spec)
        except (HeaderError, ValidationError, SpecError) as error:
            print(f"CANNOT READ: {args.file}: no usable spec in the file ({error})",
                  file=sys.stderr)
            return EXIT_CANNOT_READ
    else:
        plan = _planned(args.spec)
    if not readable_safetensors(args.file):
        # Missing, unreadable or not safetensors: say so (exit 2), not "MISMATCH" (exit 1).
        return _cmd_verify_unreadable(args.file)
    result = verify_file(plan, args.file)
    print(("OK: " if result.ok else "MISMATCH: ") + result.message)
    return 0 if result.ok else EXIT_MISMATCH


def _cmd_verify_unreadable(path: str) -> int:
    try:
        with open(path, "rb") as handle:
            read_header(handle)
        message = "unreadable"
    except OSError as error:
        message = f"cannot read {path}: {error.strerror or error}"
    except HeaderError as error:
        message = str(error)
    print(f"CANNOT READ: {message}", file=sys.stderr)
    return EXIT_CANNOT_READ


def _cmd_spec(args: argparse.Namespace) -> int:
    try:
        document = carried_spec(args.file)
    except OSError as error:
        raise Refusal(f"cannot read {args.file}: {error.strerror or error}") from None
    except HeaderError as error:
        raise Refusal(str(error)) from None
    _print_json(document, args.output)
    return 0


def readable_safetensors(path: str) -> bool:
    """Whether ``path`` is a file whose safetensors header can be read."""
    try:
        with open(path, "rb") as handle:
            read_header(handle)
    except (OSError, HeaderError):
        return False
    return True


def _cmd_serve(args: argparse.Namespace) -> int:
    from weightinit.service.server.run import serve

    return serve(host=args.host, port=args.port, workers=args.workers)
