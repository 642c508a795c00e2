// Small hand-written SVG charts for the weightinit page: bars, lines and histograms.
// No library and nothing from the network: the service may run air-gapped. Colours come
// from CSS classes (style.css), so the charts follow the page's style sheet.

const SVG_NS = "http://www.w3.org/2000/svg";
const WIDTH = 640;
const HEIGHT = 340;

function el(name, attrs = {}, parent = null, text = null) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) node.setAttribute(key, String(value));
  }
  if (text !== null) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

function tooltip(node, text) {
  el("title", {}, node, text);
  return node;
}

// A number in at most 3 significant digits; exponents outside [1e-3, 1e4).
export function formatNumber(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "-∞";
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  if (magnitude >= 1e4 || magnitude < 1e-3) {
    const [mantissa, exponent] = value.toExponential(2).split("e");
    return `${parseFloat(mantissa)}e${parseInt(exponent, 10)}`;
  }
  return String(parseFloat(value.toPrecision(3)));
}

function shorten(label, max = 18) {
  return label.length > max ? `…${label.slice(label.length - max + 1)}` : label;
}

function linearTicks(min, max, count = 5) {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const ticks = [];
  for (let t = Math.ceil(min / step) * step; t <= max + step * 1e-9; t += step) {
    ticks.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  }
  return ticks;
}

// Domain of positive values padded to whole decades, for a log axis.
function logDomain(values) {
  const positive = values.filter((v) => Number.isFinite(v) && v > 0);
  if (!positive.length) return [0.1, 10];
  let low = Math.floor(Math.log10(Math.min(...positive)));
  let high = Math.ceil(Math.log10(Math.max(...positive)));
  if (high === low) { low -= 1; high += 1; }
  return [10 ** low, 10 ** high];
}

function logTicks([low, high]) {
  const first = Math.round(Math.log10(low));
  const last = Math.round(Math.log10(high));
  const stride = Math.max(1, Math.ceil((last - first) / 8));
  const ticks = [];
  for (let p = first; p <= last; p += stride) {
    ticks.push(10 ** p);
    if (last - first <= 2 && p < last) ticks.push(2 * 10 ** p, 5 * 10 ** p);  // few decades
  }
  return ticks;
}

function scale([d0, d1], [r0, r1], log = false) {
  const f = log ? Math.log10 : (v) => v;
  const a = f(d0);
  const b = f(d1);
  return (v) => r0 + ((f(v) - a) / (b - a || 1)) * (r1 - r0);
}

// An SVG in `container` (emptied first) with a plot area inside the margins.
function frame(container, margin, title) {
  container.replaceChildren();
  const svg = el("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "chart-svg", role: "img",
    "aria-label": title || "chart", preserveAspectRatio: "xMidYMid meet",
  }, container);
  const plot = el("g", { transform: `translate(${margin.left},${margin.top})` }, svg);
  return {
    svg, plot, margin,
    width: WIDTH - margin.left - margin.right,
    height: HEIGHT - margin.top - margin.bottom,
  };
}

function yAxis(f, y, ticks, label) {
  const axis = el("g", { class: "axis" }, f.plot);
  for (const t of ticks) {
    const py = y(t);
    el("line", { x1: 0, x2: f.width, y1: py, y2: py, class: "grid" }, axis);
    el("text", { x: -6, y: py, dy: "0.32em", "text-anchor": "end" }, axis, formatNumber(t));
  }
  el("line", { x1: 0, x2: 0, y1: 0, y2: f.height, class: "domain" }, axis);
  if (label) {
    el("text", {
      transform: `translate(${-f.margin.left + 12},${f.height / 2}) rotate(-90)`,
      "text-anchor": "middle", class: "axis-label",
    }, axis, label);
  }
}

function categoryAxis(f, labels, band, highlighted = new Set()) {
  const axis = el("g", { class: "axis", transform: `translate(0,${f.height})` }, f.plot);
  el("line", { x1: 0, x2: f.width, y1: 0, y2: 0, class: "domain" }, axis);
  const rotate = labels.length > 6 || labels.some((l) => l.length > 10);
  const every = Math.max(1, Math.ceil(labels.length / 24));
  labels.forEach((label, i) => {
    if (i % every) return;
    const x = band * (i + 0.5);
    const text = el("text", {
      x, y: 14, "text-anchor": rotate ? "end" : "middle",
      transform: rotate ? `rotate(-35,${x},14)` : null,
      class: highlighted.has(i) ? "flagged-label" : null,
    }, axis, shorten(label));
    tooltip(text, label);
  });
}

// Legend items in rows above the plot area (the frame's top margin leaves room for two).
function legend(f, items) {
  const group = el("g", { class: "legend", transform: `translate(${f.margin.left},12)` }, f.svg);
  let x = 0;
  let y = 0;
  for (const item of items) {
    const width = 30 + item.name.length * 6.2;
    if (x > 0 && x + width > f.width) { x = 0; y += 18; }
    const entry = el("g", { transform: `translate(${x},${y})` }, group);
    if (item.kind === "line") {
      el("line", { x1: 0, x2: 18, y1: 0, y2: 0, class: `line ${item.cls}` }, entry);
      if (item.marker) el("circle", { cx: 9, cy: 0, r: 3, class: `marker ${item.cls}` }, entry);
    } else if (item.kind === "area") {
      el("rect", { x: 0, y: -6, width: 18, height: 12, class: item.cls }, entry);
    } else {
      el("rect", { x: 4, y: -6, width: 10, height: 12, class: `bar ${item.cls}` }, entry);
    }
    el("text", { x: 22, y: 0, dy: "0.32em" }, entry, item.name);
    x += width;
  }
}

// Grouped bars per category, e.g. expected vs observed variance per tensor.
// opts: {categories, series: [{name, cls, values}], log, yLabel, title}
export function barChart(container, opts) {
  const f = frame(container, { top: 34, right: 12, bottom: 92, left: 64 }, opts.title);
  const all = opts.series.flatMap((s) => s.values);
  const domain = opts.log ? logDomain(all)
    : [0, Math.max(...all.filter(Number.isFinite), 0) * 1.1 || 1];
  const y = scale(domain, [f.height, 0], opts.log);
  yAxis(f, y, opts.log ? logTicks(domain) : linearTicks(...domain), opts.yLabel);
  const band = f.width / Math.max(1, opts.categories.length);
  const barWidth = (band * 0.8) / opts.series.length;
  const bars = el("g", { class: "bars" }, f.plot);
  opts.categories.forEach((category, i) => {
    opts.series.forEach((series, k) => {
      const value = series.values[i];
      const x = band * (i + 0.1) + k * barWidth;
      const text = `${category}\n${series.name}: ${formatNumber(value)}`;
      if (!(value > 0) || !Number.isFinite(value)) {  // 0 has no place on a log axis
        tooltip(el("text", { x: x + barWidth / 2, y: f.height - 3, "text-anchor": "middle",
                             class: `zero-mark ${series.cls}` }, bars, value === 0 ? "0" : "–"),
                text);
        return;
      }
      const top = Math.max(0, y(value));
      tooltip(el("rect", { x, y: top, width: Math.max(1, barWidth - 1),
                           height: Math.max(0.5, f.height - top), class: `bar ${series.cls}` },
                 bars), text);
    });
  });
  categoryAxis(f, opts.categories, band);
  legend(f, opts.series.map((s) => ({ name: s.name, cls: s.cls })));
  return f.svg;
}

// Lines over categories (layers), log or linear y, with shaded bands and highlights.
// opts: {categories, series: [{name, cls, values, dashed, marker}], log, yLabel, title,
//        band: {from, to, name}, highlight: [index]}
export function lineChart(container, opts) {
  const f = frame(container, { top: 52, right: 12, bottom: 92, left: 64 }, opts.title);
  const all = opts.series.flatMap((s) => s.values).filter((v) => v !== null);
  if (opts.band) all.push(opts.band.from, opts.band.to);
  const domain = opts.log ? logDomain(all) : [Math.min(0, ...all), Math.max(...all) * 1.1];
  const y = scale(domain, [f.height, 0], opts.log);
  const band = f.width / Math.max(1, opts.categories.length);
  const highlighted = new Set(opts.highlight || []);
  const background = el("g", { class: "background" }, f.plot);
  for (const i of highlighted) {
    tooltip(el("rect", { x: band * i, y: 0, width: band, height: f.height, class: "flagged" },
               background), `${opts.categories[i]}: flagged`);
  }
  if (opts.band) {
    const top = y(Math.min(opts.band.to, domain[1]));
    const bottom = y(Math.max(opts.band.from, domain[0]));
    el("rect", { x: 0, y: top, width: f.width, height: bottom - top, class: "ok-band" },
       background);
  }
  yAxis(f, y, opts.log ? logTicks(domain) : linearTicks(...domain), opts.yLabel);
  const lines = el("g", { class: "lines" }, f.plot);
  for (const series of opts.series) {
    let d = "";
    let pen = false;
    series.values.forEach((value, i) => {
      const ok = value !== null && Number.isFinite(value) && (!opts.log || value > 0);
      if (!ok) { pen = false; return; }
      d += `${pen ? "L" : "M"}${(band * (i + 0.5)).toFixed(2)},${y(value).toFixed(2)}`;
      pen = true;
    });
    el("path", { d, class: `line ${series.cls}${series.dashed ? " dashed" : ""}` }, lines);
    if (series.marker) {
      series.values.forEach((value, i) => {
        if (value === null || !(value > 0 || !opts.log) || !Number.isFinite(value)) return;
        tooltip(el("circle", { cx: band * (i + 0.5), cy: y(value), r: 3.5,
                               class: `marker ${series.cls}` }, lines),
                `${opts.categories[i]}\n${series.name}: ${formatNumber(value)}`);
      });
    }
  }
  categoryAxis(f, opts.categories, band, highlighted);
  const items = opts.series.map((s) => ({ name: s.name, cls: s.cls, kind: "line",
                                          marker: s.marker }));
  if (opts.band) items.push({ name: opts.band.name, cls: "ok-band", kind: "area" });
  if (highlighted.size) items.push({ name: "flagged", cls: "flagged", kind: "area" });
  legend(f, items);
  return f.svg;
}

// Observed density per bin against the theoretical density (a curve, or a spike).
// opts: {edges, density, curve: {x, y} | null, spike: number | null, title, xLabel}
export function histogramChart(container, opts) {
  const f = frame(container, { top: 34, right: 16, bottom: 48, left: 64 }, opts.title);
  const { edges, density } = opts;
  const x = scale([edges[0], edges[edges.length - 1]], [0, f.width]);
  const curveMax = opts.curve ? Math.max(...opts.curve.y) : 0;
  const top = Math.max(...density, curveMax) * 1.08 || 1;
  const y = scale([0, top], [f.height, 0]);
  yAxis(f, y, linearTicks(0, top), "density");
  const bars = el("g", { class: "bars" }, f.plot);
  density.forEach((value, i) => {
    const left = x(edges[i]);
    tooltip(el("rect", { x: left, y: y(value), width: Math.max(0.5, x(edges[i + 1]) - left - 0.5),
                         height: f.height - y(value), class: "bar observed" }, bars),
            `[${formatNumber(edges[i])}, ${formatNumber(edges[i + 1])}): ${formatNumber(value)}`);
  });
  if (opts.curve) {
    const d = opts.curve.x.map((cx, i) =>
      `${i ? "L" : "M"}${x(cx).toFixed(2)},${y(opts.curve.y[i]).toFixed(2)}`).join("");
    el("path", { d, class: "line theory" }, f.plot);
  }
  if (opts.spike !== null && opts.spike !== undefined) {
    const sx = x(opts.spike);
    el("line", { x1: sx, x2: sx, y1: f.height, y2: 0, class: "line theory spike" }, f.plot);
    el("text", { x: sx + 4, y: 12, class: "spike-label" }, f.plot,
       `all mass at ${formatNumber(opts.spike)}`);
  }
  const axis = el("g", { class: "axis", transform: `translate(0,${f.height})` }, f.plot);
  el("line", { x1: 0, x2: f.width, y1: 0, y2: 0, class: "domain" }, axis);
  for (const t of linearTicks(edges[0], edges[edges.length - 1], 6)) {
    el("text", { x: x(t), y: 16, "text-anchor": "middle" }, axis, formatNumber(t));
  }
  if (opts.xLabel) {
    el("text", { x: f.width / 2, y: 38, "text-anchor": "middle", class: "axis-label" }, axis,
       opts.xLabel);
  }
  const items = [{ name: "observed", cls: "observed" }];
  if (opts.curve || opts.spike !== null) {
    items.push({ name: opts.theoryName || "theoretical", cls: "theory", kind: "line" });
  }
  legend(f, items);
  return f.svg;
}
