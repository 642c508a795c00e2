"""From raw per-run figures to the results table: medians, min-max, ratios, targets.

``Samples`` maps a measurement name (``"http:llama_bf16"``) to one dict of figures per run.
Ratios between two sides are computed per run (the sides ran back to back in the same
run, so they saw the same machine) and summarised like any other figure.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Samples = dict[str, list[dict[str, float]]]


@dataclass(frozen=True)
class Summary:
    """Median and range of one figure over the runs."""

    median: float
    low: float
    high: float
    runs: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        if not values:
            return cls(float("nan"), float("nan"), float("nan"), 0)
        return cls(statistics.median(values), min(values), max(values), len(values))

    def text(self, digits: int = 2, unit: str = "") -> str:
        if not self.runs:
            return "n/a"
        return (f"{self.median:.{digits}f}{unit} ({self.low:.{digits}f}-"
                f"{self.high:.{digits}f})")


def figure(samples: Samples, name: str, key: str = "seconds") -> Summary:
    return Summary.of([run[key] for run in samples.get(name, []) if key in run])


def rate(samples: Samples, name: str, per: str = "bytes", scale: float = 1e9) -> Summary:
    """``per`` / second (GB/s by default) over the runs."""
    return Summary.of([run[per] / run["seconds"] / scale for run in samples.get(name, [])])


def paired(samples: Samples, numerator: str, denominator: str,
           value: Callable[[dict[str, float]], float] = lambda run: run["seconds"]
           ) -> Summary:
    """Per-run ``value(numerator) / value(denominator)``, over the runs both have."""
    pairs = zip(samples.get(numerator, []), samples.get(denominator, []), strict=False)
    return Summary.of([value(a) / value(b) for a, b in pairs])


@dataclass(frozen=True)
class Target:
    """A goal of the issue, the figure that judges it, and the bound."""

    goal: str
    measured: Summary
    bound: float
    higher_is_better: bool
    unit: str = "x"

    @property
    def met(self) -> bool:
        if not self.measured.runs:
            return False
        value = self.measured.median
        return value >= self.bound if self.higher_is_better else value < self.bound

    def margin(self) -> str:
        """How far from the bound the median is, as a factor."""
        value = self.measured.median
        if not self.measured.runs or value == 0:
            return "n/a"
        factor = value / self.bound if self.higher_is_better else self.bound / value
        return f"{factor:.2f}x of the bound"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def targets_table(targets: Sequence[Target]) -> str:
    rows = []
    for target in targets:
        sign = ">=" if target.higher_is_better else "<"
        rows.append([target.goal, f"{sign} {target.bound:g}{target.unit}",
                     target.measured.text(2, target.unit), target.margin(),
                     "**met**" if target.met else "**missed**"])
    return markdown_table(["target", "bound", "median (min-max)", "margin", "verdict"], rows)
