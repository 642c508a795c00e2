// The weightinit page: spec -> plan table -> generate (report + diagnostics) -> charts,
// histogram and download. It talks only to the server that served it (relative URLs, so
// it also works behind a path prefix).

import { formatNumber } from "./charts.js";
import {
  cell, renderHistogram, renderHistogramChoices, renderPropagation, renderVarianceChart,
} from "./results.js";
import { sha256Hex } from "./sha256.js";

const $ = (id) => document.getElementById(id);
const DENSE_TYPES = new Set(["linear", "conv1d", "conv2d", "conv3d"]);
const ACTIVATIONS = ["relu", "leaky_relu", "gelu", "silu", "tanh", "sigmoid", "linear"];
const OUTPUT_ACTIVATIONS = [...ACTIVATIONS, "softmax"];  // softmax: after the last layer only

const state = {
  examples: [],
  spec: null,
  plan: null,
  report: null,
  diagnosis: null,
  defaultActivations: "relu",
  run: 0,  // the latest plan/generate run; older answers are dropped
};

class ApiFailure extends Error {}

async function api(path, body, binary = false) {
  const headers = { "content-type": "application/json" };
  const token = $("token").value.trim();
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(path, { method: "POST", headers, body: JSON.stringify(body) });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const { error } = await response.json();
      const details = (error.details || [])
        .map((d) => `  ${(d.loc || []).join(".") || "body"}: ${d.msg}`).join("\n");
      message = `${response.status} ${error.message}${details ? `\n${details}` : ""}`;
    } catch { /* not our JSON error: keep the status line */ }
    throw new ApiFailure(message);
  }
  return binary ? response.arrayBuffer() : response.json();
}

function setStatus(text) { $("status").textContent = text; }

// Generate and Download act on the planned spec: only while it is the one shown.
function setPlanned(planned) {
  $("generate-button").disabled = !planned;
  $("download-button").disabled = !planned;
}

function showError(error) {
  const box = $("error");
  if (!error) { box.hidden = true; box.textContent = ""; return; }
  box.hidden = false;
  box.textContent = error instanceof ApiFailure || error instanceof SyntaxError
    ? error.message : String(error);
}

function initializerText(init) {
  const params = Object.entries(init)
    .filter(([key, value]) => key !== "name" && value !== null && typeof value !== "object")
    .map(([key, value]) => `${key}=${typeof value === "number" ? formatNumber(value) : value}`);
  return { text: init.name, title: params.join(", ") };
}

function parseSpec() {
  const text = $("spec").value.trim();
  if (!text) throw new SyntaxError("the spec is empty: pick an example or paste a spec");
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new SyntaxError(`the spec is not valid JSON: ${error.message}`);
  }
}

function renderPlanTable() {
  const body = $("plan-table").querySelector("tbody");
  body.replaceChildren();
  const observed = new Map((state.report?.tensors || []).map((t) => [t.name, t]));
  for (const tensor of state.plan.tensors) {
    const row = document.createElement("tr");
    row.dataset.tensor = tensor.name;
    cell(row, tensor.name, "name");
    cell(row, `[${tensor.shape.join(", ")}]`);
    const init = initializerText(tensor.initializer);
    cell(row, init.text, null, init.title);
    cell(row, tensor.fan_in ?? "–", "num");
    cell(row, tensor.fan_out ?? "–", "num");
    cell(row, formatNumber(tensor.expected_variance), "num");
    const seen = observed.get(tensor.name);
    const td = cell(row, seen ? formatNumber(seen.variance) : "", "num");
    if (seen && tensor.expected_variance > 0) {
      const ratio = seen.variance / tensor.expected_variance;
      td.title = `observed / expected = ${formatNumber(ratio)}`;
    }
    body.appendChild(row);
  }
  const p = state.plan;
  $("plan-summary").textContent = `${p.tensors.length} tensors · ${p.total_parameters.toLocaleString()} `
    + `parameters · file ${(p.file_bytes / 2 ** 20).toFixed(2)} MiB · convention ${p.convention} `
    + `· spec sha256 ${p.spec_sha256.slice(0, 16)}…`;
}

// The linear/conv layers of the plan, in order of first appearance.
function denseLayers() {
  const seen = [];
  for (const t of state.plan.tensors) {
    if (t.role === "weight" && DENSE_TYPES.has(t.layer_type) && !seen.includes(t.layer)) {
      seen.push(t.layer);
    }
  }
  return seen;
}

function renderActivations() {
  const box = $("activations");
  box.replaceChildren();
  const layers = denseLayers();
  layers.forEach((layer, index) => {
    const label = document.createElement("label");
    label.textContent = layer;
    const select = document.createElement("select");
    select.dataset.layer = layer;
    const choices = index === layers.length - 1 ? OUTPUT_ACTIVATIONS : ACTIVATIONS;
    for (const name of choices) select.appendChild(new Option(name, name));
    const preset = state.defaultActivations;
    const value = typeof preset === "string" ? preset : (preset[layer] || "relu");
    select.value = choices.includes(value) ? value : "relu";
    label.appendChild(select);
    box.appendChild(label);
  });
  if (!layers.length) box.textContent = "No linear or conv layers: no signal propagation.";
}

function chosenActivations() {
  const map = {};
  for (const select of $("activations").querySelectorAll("select")) {
    map[select.dataset.layer] = select.value;
  }
  return map;
}

async function plan() {
  const run = ++state.run;
  showError(null);
  let spec;
  try {
    spec = parseSpec();
  } catch (error) {
    showError(error);
    return false;
  }
  setPlanned(false);
  setStatus("planning…");
  try {
    const document = await api("v1/plan", spec);
    if (run !== state.run) return false;
    state.spec = spec;
    state.plan = document;
    state.report = null;
    state.diagnosis = null;
    renderPlanTable();
    renderActivations();
    setPlanned(true);
    $("download-info").replaceChildren();
    setStatus(`planned: ${document.tensors.length} tensors`);
    return true;
  } catch (error) {
    if (run === state.run) { showError(error); setStatus(""); }
    return false;
  }
}

async function generate() {
  if (!state.plan) return;
  const run = ++state.run;
  showError(null);
  setStatus("generating…");
  const started = performance.now();
  const activations = chosenActivations();
  const [report, diagnosis] = await Promise.allSettled([
    api("v1/report", state.spec),
    api("v1/diagnose", { spec: state.spec, activations }),
  ]);
  if (run !== state.run) return;
  const failures = [report, diagnosis].filter((r) => r.status === "rejected");
  if (report.status === "fulfilled") {
    state.report = report.value;
    renderPlanTable();
    renderVarianceChart(state.report);
  }
  if (diagnosis.status === "fulfilled") {
    state.diagnosis = diagnosis.value;
    renderPropagation(state.diagnosis);
    renderHistogramChoices(state.diagnosis, state.plan);
  }
  if (failures.length) showError(failures.map((f) => f.reason.message).join("\n"));
  const seconds = ((performance.now() - started) / 1000).toFixed(2);
  setStatus(failures.length ? "generated with errors" : `generated in ${seconds} s`);
  document.body.dataset.generated = String(run);
}

function fact(list, term, value, cls = null) {
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  dd.textContent = value;
  if (cls) dd.className = cls;
  list.append(dt, dd);
  return dd;
}

async function download() {
  const info = $("download-info");
  info.replaceChildren();
  showError(null);
  setStatus("downloading…");
  try {
    const buffer = await api("v1/init", state.spec, true);
    const { hex, via } = await sha256Hex(buffer);
    const fileName = `weights-${state.plan.spec_sha256.slice(0, 12)}.safetensors`;
    fact(info, "file", `${fileName} (${buffer.byteLength.toLocaleString()} bytes)`);
    fact(info, "sha256", hex).id = "download-sha256";
    if (state.report) {
      const same = state.report.file_sha256 === hex;
      fact(info, "vs /v1/report", same ? "✓ matches the server's file_sha256"
        : `✗ differs from the server's ${state.report.file_sha256}`, same ? "match" : "mismatch");
    }
    fact(info, "computed by", via);
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([buffer], { type: "application/octet-stream" }));
    link.download = fileName;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
    setStatus("downloaded");
  } catch (error) {
    showError(error);
    setStatus("");
  }
}

function loadExample(id) {
  const example = state.examples.find((e) => e.id === id);
  if (!example) return;
  $("spec").value = JSON.stringify(example.spec, null, 2);
  state.defaultActivations = example.activations || "relu";
  plan().then((ok) => ok && generate());
}

async function start() {
  $("plan-button").addEventListener("click", () => {
    state.defaultActivations = "relu";
    plan();
  });
  $("generate-button").addEventListener("click", generate);
  $("download-button").addEventListener("click", download);
  $("histogram-tensor").addEventListener("change", () => renderHistogram(state.diagnosis));
  $("example").addEventListener("change", (event) => loadExample(event.target.value));
  $("activation-all").addEventListener("change", (event) => {
    if (!event.target.value) return;
    for (const select of $("activations").querySelectorAll("select")) {
      select.value = event.target.value;
    }
  });
  $("spec").addEventListener("input", () => {
    state.run++;  // answers still coming for the previous text no longer apply
    setPlanned(false);
    setStatus(state.plan ? "spec edited: Plan again" : "");
  });
  $("upload").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    $("spec").value = await file.text();
    $("example").value = "";
    state.defaultActivations = "relu";
    plan();
  });
  $("token").value = sessionStorage.getItem("weightinit-token") || "";
  $("token").addEventListener("change", () => {
    sessionStorage.setItem("weightinit-token", $("token").value.trim());
  });
  try {
    const response = await fetch("ui/examples.json");
    state.examples = await response.json();
  } catch (error) {
    showError(`could not load the examples: ${error}`);
  }
  for (const example of state.examples) {
    $("example").appendChild(new Option(example.title, example.id));
  }
  document.body.dataset.ready = "true";
  if (state.examples.length && !$("spec").value.trim()) {
    $("example").value = state.examples[0].id;
    loadExample(state.examples[0].id);
  }
}

start();
