// The result views of the weightinit page: the variance chart, the signal-propagation
// chart with its flags and numbers, and the histogram of a chosen tensor.

import { barChart, formatNumber, histogramChart, lineChart } from "./charts.js";

const $ = (id) => document.getElementById(id);
const MAX_BARS = 64;

export function cell(row, text, cls = null, title = null) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  if (title) td.title = title;
  row.appendChild(td);
  return td;
}

export function renderVarianceChart(report) {
  // Constants (zeros, ones) have variance 0, which has no place on a log axis.
  const random = report.tensors.filter((t) => t.expected_variance > 0 || t.variance > 0);
  const tensors = random.slice(0, MAX_BARS);
  barChart($("variance-chart"), {
    title: "expected vs observed variance per tensor",
    categories: tensors.map((t) => t.name),
    series: [
      { name: "expected", cls: "expected", values: tensors.map((t) => t.expected_variance) },
      { name: "observed", cls: "observed", values: tensors.map((t) => t.variance) },
    ],
    log: true,
    yLabel: "variance (log)",
  });
  const hidden = report.tensors.length - tensors.length;
  if (hidden) {
    const note = document.createElement("p");
    note.className = "muted small";
    const constants = report.tensors.length - random.length;
    note.textContent = `${tensors.length} of ${report.tensors.length} tensors shown`
      + (constants ? ` (${constants} constant, variance 0, left out)` : "") + ".";
    $("variance-chart").appendChild(note);
  }
}

const MAX_FLAG_LINES = 8;

// One line per flagged layer: "fc3: forward vanishing (×0.17 per layer, 0.005 overall)".
function flagLines(flags) {
  const byLayer = new Map();
  for (const flag of flags) {
    if (flag.source !== "analytic" && flags.some((f) => f.source === "analytic"
        && f.layer === flag.layer && f.direction === flag.direction && f.scope === flag.scope)) {
      continue;  // the measured twin of an analytic flag adds nothing to the line
    }
    const value = flag.value === null ? "overflow" : formatNumber(flag.value);
    const what = flag.scope === "layer" ? `×${value} in this layer` : `${value} overall`;
    const parts = byLayer.get(flag.layer) || new Map();
    const key = `${flag.direction} ${flag.kind}`;
    parts.set(key, [...(parts.get(key) || []), `${what}${flag.source === "measured" ? ", measured" : ""}`]);
    byLayer.set(flag.layer, parts);
  }
  return [...byLayer].map(([layer, parts]) =>
    `${layer}: ${[...parts].map(([key, whats]) => `${key} (${whats.join(", ")})`).join("; ")}`);
}

export function renderPropagation(diagnosis) {
  const p = diagnosis.propagation;
  const flags = $("flags");
  flags.replaceChildren();
  const table = $("propagation-table");
  table.replaceChildren();
  if (!p.sequential) {
    $("propagation-chart").replaceChildren(Object.assign(document.createElement("p"), {
      className: "muted", textContent: `Not shown: ${p.reason}`,
    }));
    return;
  }
  const layers = p.layers;
  const series = (direction, source) => layers.map((l) => l[direction][source] ?? null);
  lineChart($("propagation-chart"), {
    title: "signal propagation",
    categories: layers.map((l) => l.layer),
    series: [
      { name: "forward, analytic", cls: "forward", values: series("forward", "analytic") },
      { name: "forward, measured", cls: "forward", dashed: true, marker: true,
        values: series("forward", "measured") },
      { name: "backward, analytic", cls: "backward", values: series("backward", "analytic") },
      { name: "backward, measured", cls: "backward", dashed: true, marker: true,
        values: series("backward", "measured") },
    ],
    log: true,
    yLabel: "mean square (log)",
    band: { from: p.cumulative_band[0], to: p.cumulative_band[1], name: "healthy range" },
    highlight: layers.map((l, i) => (l.flagged ? i : -1)).filter((i) => i >= 0),
  });
  const lines = flagLines(p.flags);
  for (const line of lines.slice(0, MAX_FLAG_LINES)) {
    const item = document.createElement("li");
    item.textContent = line;
    flags.appendChild(item);
  }
  if (lines.length > MAX_FLAG_LINES) {
    const item = document.createElement("li");
    item.textContent = `… and ${lines.length - MAX_FLAG_LINES} more layers (see the numbers)`;
    flags.appendChild(item);
  }
  if (!p.flags.length) {
    const item = document.createElement("li");
    item.className = "ok";
    item.textContent = "✓ No layer flagged: the signal neither vanishes nor explodes.";
    flags.appendChild(item);
  }
  const head = document.createElement("tr");
  for (const title of ["layer", "activation", "fwd analytic", "fwd measured", "layer gain",
                       "bwd analytic", "bwd measured"]) {
    const th = document.createElement("th");
    th.textContent = title;
    head.appendChild(th);
  }
  table.appendChild(head);
  for (const l of layers) {
    const row = document.createElement("tr");
    if (l.flagged) row.className = "flagged";
    cell(row, l.layer, "name");
    cell(row, l.activation);
    cell(row, formatNumber(l.forward.analytic), "num");
    cell(row, formatNumber(l.forward.measured), "num");
    cell(row, formatNumber(l.layer_gain.analytic), "num", "E[x_l²] / E[x_(l-1)²]: what the "
         + `layer and its activation do to the signal (measured ${formatNumber(l.layer_gain.measured)})`);
    cell(row, formatNumber(l.backward.analytic), "num");
    cell(row, formatNumber(l.backward.measured), "num");
    table.appendChild(row);
  }
}

export function renderHistogramChoices(diagnosis, plan) {
  const select = $("histogram-tensor");
  const previous = select.value;
  select.replaceChildren();
  const names = Object.keys(diagnosis.histograms);
  for (const name of names) select.appendChild(new Option(name, name));
  const firstWeight = plan.tensors.find((t) => t.role === "weight" && names.includes(t.name));
  select.value = names.includes(previous) ? previous : (firstWeight?.name || names[0] || "");
  renderHistogram(diagnosis);
}

function distributionText(dist) {
  const n = formatNumber;
  switch (dist.kind) {
    case "uniform": return `uniform(${n(dist.low)}, ${n(dist.high)})`;
    case "normal": return `${dist.approximate ? "≈ " : ""}normal(${n(dist.mean)}, std ${n(dist.std)})`;
    case "truncated_normal":
      return `truncated normal(${n(dist.mean)}, std ${n(dist.std)}) on [${n(dist.a)}, ${n(dist.b)}]`;
    case "constant": return `constant ${n(dist.value)}`;
    default: return "no closed-form density";
  }
}

export function renderHistogram(diagnosis) {
  const name = $("histogram-tensor").value;
  const h = diagnosis?.histograms[name];
  if (!h) return;
  const dist = h.distribution;
  histogramChart($("histogram-chart"), {
    title: `histogram of ${name}`,
    edges: h.edges,
    density: h.density,
    curve: h.curve,
    spike: dist.kind === "constant" ? dist.value : null,
    theoryName: distributionText(dist),
    xLabel: `${name} · ${h.count.toLocaleString()} values`,
  });
}
