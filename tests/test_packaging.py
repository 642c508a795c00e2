"""The distribution installs one top-level name, ``weightinit``, and the public API is
reachable from it (issue: ``import core`` collided with other projects' packages)."""

from __future__ import annotations

import importlib
import importlib.util
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import weightinit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # A copy of what the Dockerfile copies: setuptools writes build/ and *.egg-info into
    # the source folder, which must stay clean (and shared by concurrent runs).
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("weightinit", "core", "service"):
        shutil.copytree(ROOT / name, source / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(source)],
        check=True, capture_output=True, timeout=240,
    )
    (found,) = out.glob("weightinit-*.whl")
    return found


def test_wheel_installs_only_the_weightinit_namespace(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/", 1)[0] for name in names}
    dist_info = {t for t in tops if t.endswith(".dist-info")}
    assert tops - dist_info == {"weightinit"}, tops
    (info,) = dist_info
    top_level = zipfile.ZipFile(wheel).read(f"{info}/top_level.txt").decode().split()
    assert top_level == ["weightinit"]


def test_wheel_holds_every_module_and_data_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {"weightinit/py.typed", "weightinit/__main__.py"}
    for folder, package in (("core", "weightinit/core"), ("service", "weightinit/service"),
                            ("weightinit", "weightinit")):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                expected.add(f"{package}/{path.relative_to(ROOT / folder).as_posix()}")
    assert expected <= names, sorted(expected - names)


def test_public_api_from_the_top_level() -> None:
    from weightinit.core.plan import build_plan
    from weightinit.service.client.client import Client

    assert weightinit.build_plan is build_plan
    assert weightinit.Client is Client
    for name in weightinit.__all__:
        assert getattr(weightinit, name) is not None
    with pytest.raises(AttributeError):
        _ = weightinit.no_such_name  # type: ignore[attr-defined]


def test_python_dash_m_and_version() -> None:
    done = subprocess.run([sys.executable, "-m", "weightinit", "--version"],
                          capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == f"weightinit {weightinit.__version__}"
    assert weightinit.__version__ != "0.0.0+unknown"


TYPED_USE = '''
import weightinit

spec = weightinit.Spec.model_validate({"seed": 1, "layers": []})
plan = weightinit.build_plan(spec)
result: weightinit.Verification = weightinit.verify_file(plan, "model.safetensors")
weightinit.write_file(plan, 42)  # wrong: a path is str or os.PathLike
client = weightinit.Client("http://127.0.0.1:8000")
info: weightinit.DownloadedFile = client.init({}, "model.safetensors")  # typed by overload
size: int = info.bytes
report: dict = client.init({}, "model.safetensors", with_report=True)
shape = client.init({})["x"].shape  # arrays
'''


def test_public_api_is_typed_for_users(wheel: Path, tmp_path: Path) -> None:
    """mypy, run as a user's project would, over the installed wheel (py.typed): the
    public names resolve to typed definitions, so a wrong argument is caught."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    user = tmp_path / "use_weightinit.py"
    user.write_text(TYPED_USE)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--follow-imports=silent",
         "--ignore-missing-imports", "--python-version", "3.11", str(user)],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
        env={"MYPYPATH": str(site), "PATH": "/usr/bin:/bin"},
    )
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1 and ":7: error:" in errors[0] and "write_file" in errors[0], done.stdout


SCRIPTS = sorted([*ROOT.glob(".ci/*"), *ROOT.glob("deploy/**/*.sh"), ROOT / "Dockerfile"])
IMPORT_LINE = re.compile(
    r"^\s*(?:from\s+(weightinit[\w.]*)\s+import\s+([\w, ]+)|import\s+([\w., ]+))\s*$")


def imports_in(text: str) -> list[tuple[str, str | None]]:
    """(module, name) pairs of every ``weightinit`` import written in a script's inline
    Python, ``name`` None for a plain ``import``."""
    found: list[tuple[str, str | None]] = []
    for line in text.splitlines():
        match = IMPORT_LINE.match(line)
        if not match:
            continue
        if match.group(1):
            found += [(match.group(1), name.strip()) for name in match.group(2).split(",")]
        else:
            found += [(module.strip(), None) for module in match.group(3).split(",")
                      if module.strip().startswith("weightinit")]
    return found


def test_every_weightinit_import_in_ci_and_deploy_scripts_resolves() -> None:
    """The CI and deployment scripts carry inline Python that tests never import: after a
    module moves, a stale ``from weightinit.core import kernels`` there fails only in CI."""
    checked = 0
    for script in SCRIPTS:
        if not script.is_file():
            continue
        for module, name in imports_in(script.read_text(errors="replace")):
            imported = importlib.import_module(module)
            if name is not None:
                assert hasattr(imported, name) or importlib.util.find_spec(
                    f"{module}.{name}") is not None, f"{script.name}: {module}.{name}"
            checked += 1
    assert checked >= 3  # numpy-compat.sh and deploy-check.sh hold some
