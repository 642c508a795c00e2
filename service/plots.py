"""PNG charts of a report, for notebooks and CI logs (``weightinit report --plot``).

Two panels: expected vs observed variance per tensor, and, when the model is a
sequential stack of linear/conv layers, the signal-propagation chart (forward and
backward mean square through depth; flagged layers shaded red). From a report document
alone the propagation is analytic only; pass ``diagnostics`` (a
``weightinit.core.diagnostics.signal.diagnose`` or ``POST /v1/diagnose`` document) to draw
the measured values too.

matplotlib is optional (the ``plots`` extra): it is imported here, when a plot is asked
for, and drawn with the Agg canvas directly, so no global pyplot backend is changed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from weightinit.core.diagnostics.signal import propagation_from_document

MAX_BARS = 64
FORWARD, BACKWARD, EXPECTED, OBSERVED, FLAG = "#2457c5", "#d9730d", "#a9c4ef", "#2457c5", "#c62828"


def _figure_class() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise RuntimeError(
            "plotting needs matplotlib: pip install 'weightinit[plots]' (or pip install "
            "matplotlib)"
        ) from None
    return Figure, FigureCanvasAgg


def _decades(axes: Any, values: list[float | None]) -> None:
    """Log y-axis limits on whole decades around the positive values (bars then start at
    a decade boundary instead of just below the smallest value)."""
    from matplotlib.ticker import NullFormatter

    positive = [v for v in values if v and v > 0 and math.isfinite(v)]
    if positive:
        low = math.floor(math.log10(min(positive)))
        high = max(math.ceil(math.log10(max(positive))), low + 1)
        axes.set_ylim(10.0**low, 10.0**high)
    axes.yaxis.set_minor_formatter(NullFormatter())


def _variance_panel(axes: Any, document: Mapping[str, Any]) -> None:
    tensors = [t for t in document.get("tensors", [])
               if (t.get("expected_variance") or 0) > 0 or (t.get("variance") or 0) > 0]
    shown = tensors[:MAX_BARS]
    positions = range(len(shown))
    width = 0.4
    axes.bar([p - width / 2 for p in positions], [t["expected_variance"] for t in shown],
             width, color=EXPECTED, label="expected")
    if shown and all(t.get("variance") is not None for t in shown):
        axes.bar([p + width / 2 for p in positions], [t["variance"] for t in shown], width,
                 color=OBSERVED, label="observed")
    axes.set_yscale("log")
    _decades(axes, [t["expected_variance"] for t in shown] + [t.get("variance") for t in shown])
    axes.set_xticks(list(positions))
    axes.set_xticklabels([t["name"] for t in shown], rotation=40, ha="right", fontsize=8)
    axes.set_ylabel("variance (log)")
    left_out = len(document.get("tensors", [])) - len(shown)
    note = f" ({left_out} constant or beyond {MAX_BARS} not shown)" if left_out else ""
    axes.set_title(f"expected vs observed variance per tensor{note}", fontsize=10)
    axes.legend(fontsize=8)


def _propagation_panel(axes: Any, propagation: Mapping[str, Any]) -> None:
    layers = propagation["layers"]
    x = list(range(len(layers)))
    for index, layer in enumerate(layers):
        if layer["flagged"]:
            axes.axvspan(index - 0.5, index + 0.5, color=FLAG, alpha=0.12, linewidth=0)
    low, high = propagation["cumulative_band"]
    axes.axhspan(low, high, color="#2e7d32", alpha=0.06, linewidth=0, label="healthy range")
    for direction, colour in (("forward", FORWARD), ("backward", BACKWARD)):
        analytic = [layer[direction].get("analytic") for layer in layers]
        axes.plot(x, [v if v else float("nan") for v in analytic], color=colour,
                  label=f"{direction}, analytic")
        measured = [layer[direction].get("measured") for layer in layers]
        if any(v is not None for v in measured):
            axes.plot(x, [v if v else float("nan") for v in measured], color=colour,
                      linestyle="--", marker="o", markerfacecolor="white",
                      label=f"{direction}, measured")
    axes.set_yscale("log")
    _decades(axes, [low, high] + [layer[d].get(source) for layer in layers
                                  for d in ("forward", "backward")
                                  for source in ("analytic", "measured")])
    axes.set_xlim(-0.5, len(layers) - 0.5)
    axes.set_xticks(x)
    axes.set_xticklabels([layer["layer"] for layer in layers], rotation=40, ha="right",
                         fontsize=8)
    for label, layer in zip(axes.get_xticklabels(), layers, strict=True):
        if layer["flagged"]:
            label.set_color(FLAG)
    axes.set_ylabel("mean square (log)")
    flagged = sum(layer["flagged"] for layer in layers)
    axes.set_title(f"signal propagation: {flagged} of {len(layers)} layers flagged",
                   fontsize=10)
    axes.legend(fontsize=8)


def plot_report(
    document: Mapping[str, Any],
    path: str | os.PathLike[str],
    *,
    activation: str | Mapping[str, str] = "relu",
    diagnostics: Mapping[str, Any] | None = None,
) -> str:
    """Draw ``document`` (a plan or report) to a PNG at ``path``; returns the path.

    ``activation`` is the activation after every layer (or a map by layer path) for the
    analytic propagation; ``diagnostics``, when given, supplies the propagation instead,
    measured values included.
    """
    figure_class, canvas_class = _figure_class()
    if diagnostics is not None:
        propagation = diagnostics["propagation"]
    else:
        propagation = propagation_from_document(document, activation)
    panels = 2 if propagation["sequential"] else 1
    figure = figure_class(figsize=(6.5 * panels, 4.8), layout="constrained")
    canvas_class(figure)
    axes = figure.subplots(1, panels, squeeze=False)[0]
    _variance_panel(axes[0], document)
    if panels == 2:
        _propagation_panel(axes[1], propagation)
    else:
        figure.text(0.99, 0.01, f"no signal-propagation chart: {propagation['reason']}",
                    ha="right", fontsize=7, color="#667085")
    figure.suptitle(f"weightinit · seed {document.get('seed')} · spec "
                    f"{str(document.get('spec_sha256', ''))[:12]}", fontsize=11)
    figure.savefig(os.fspath(path), dpi=110)
    return os.fspath(path)
