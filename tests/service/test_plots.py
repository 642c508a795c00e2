"""``weightinit report --plot``: PNG charts drawn with matplotlib (an optional extra)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from weightinit.core import Spec, build_plan
from weightinit.core.diagnostics.signal import diagnose
from weightinit.service.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SPEC = {"seed": 1234, "convention": "torch", "layers": [
    {"type": "linear", "name": "fc1", "in_features": 100, "out_features": 64,
     "weight_init": "glorot_uniform", "bias_init": "zeros"},
    {"type": "linear", "name": "fc2", "in_features": 64, "out_features": 10,
     "weight_init": "glorot_uniform", "bias_init": "zeros"}]}


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_report_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    out = tmp_path / "report.png"
    assert main(["report", str(spec), "-o", str(tmp_path / "r.json"), "--plot", str(out)]) == 0
    width, height = png_size(out)
    assert out.stat().st_size > 10_000 and width > height  # two panels side by side


def test_plot_with_measured_diagnostics(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from weightinit.service.plots import plot_report

    plan = build_plan(Spec.model_validate(SPEC))
    document = diagnose(plan, {"fc1": "relu", "fc2": "softmax"})
    out = plot_report({"tensors": document["tensors"], "seed": 1234}, tmp_path / "d.png",
                      diagnostics=document)
    assert png_size(Path(out))[0] > 0


def test_non_sequential_model_gets_the_variance_panel_only(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from weightinit.service.plots import plot_report

    spec = Spec.model_validate({"seed": 1, "layers": [
        {"type": "embedding", "name": "emb", "num_embeddings": 50, "embedding_dim": 8}]})
    document = diagnose(build_plan(spec))
    width, height = png_size(Path(plot_report(document, tmp_path / "one.png")))
    assert width < 1.5 * height


def test_missing_matplotlib_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    from weightinit.service.plots import plot_report

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(RuntimeError, match="pip install"):
        plot_report({"tensors": []}, tmp_path / "x.png")
