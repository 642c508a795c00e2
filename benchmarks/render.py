"""The results as markdown: what was measured, medians with min-max, and the targets.

Names of measurements are ``"<side>:<model>"`` (``"torch:llama_bf16"``), or a single name
for the model-independent ones (``"latency_plan"``, ``"limit_sfc64"``).
"""

from __future__ import annotations

from typing import Any

from benchmarks.table import (
    Samples,
    Summary,
    Target,
    figure,
    markdown_table,
    paired,
    rate,
    targets_table,
)

MODELS = {
    "llama_bf16": "Llama-style, bf16, normal(0.02)",
    "llama_f32": "Llama-style, f32, normal(0.02)",
    "convmlp_f32": "conv/MLP, f32, he/glorot uniform",
}
BIG = "llama7b_bf16"
MIB = 1 << 20


def _speedup(samples: Samples, slow: str, fast: str) -> Summary:
    return paired(samples, slow, fast)


def targets(samples: Samples) -> list[Target]:
    """The issue's targets, each judged by its paired per-run ratio or figure."""
    engine_vs_raw = paired(samples, "limit_sfc64", "engine:llama_bf16",
                           value=lambda run: run["seconds"] / run["bytes"])
    per_word = paired(samples, "limit_sfc64", "engine:llama_bf16",
                      value=lambda run: run["seconds"] / run.get("words", run.get("elements", 1)))
    return [
        Target("HTTP end to end vs torch, Llama 1B bf16", _speedup(
            samples, "torch:llama_bf16", "http:llama_bf16"), 3.0, True),
        Target("HTTP end to end vs torch, conv/MLP f32 uniform", _speedup(
            samples, "torch:convmlp_f32", "http:convmlp_f32"), 1.5, True),
        Target("engine / raw SFC64 bits, same bytes (bf16 normal)", engine_vs_raw, 0.5, True),
        Target("engine elements / raw SFC64 64-bit words (bf16 normal)", per_word, 0.5, True),
        Target("engine / raw SFC64 bits, same bytes (f32 uniform)", paired(
            samples, "limit_sfc64", "engine:convmlp_f32",
            value=lambda run: run["seconds"] / run["bytes"]), 0.5, True),
        Target("engine 2 workers / 1 worker (bf16 normal)", _speedup(
            samples, "engine_1worker:llama_bf16", "engine:llama_bf16"), 1.7, True),
        Target("engine 2 workers / 1 worker (f32 uniform)", _speedup(
            samples, "engine_1worker:convmlp_f32", "engine:convmlp_f32"), 1.7, True),
        Target("server peak RSS, 7B bf16 stream", figure(samples, "http:llama7b_bf16",
                                                          "peak_rss_mib"), 512, False, " MiB"),
        Target("throughput kept with statistics (bf16 normal)", paired(
            samples, "engine:llama_bf16", "engine_stats:llama_bf16"), 0.85, True),
        Target("throughput kept with statistics (f32 uniform)", paired(
            samples, "engine:convmlp_f32", "engine_stats:convmlp_f32"), 0.85, True),
        Target("/v1/plan 32 blocks p50, new spec each time", figure(
            samples, "latency_plan", "p50_ms"), 10, False, " ms"),
        Target("small MLP /v1/init round trip p50, new spec each time", figure(
            samples, "latency_init", "p50_ms"), 20, False, " ms"),
    ]


def _seconds_table(samples: Samples, models: dict[str, dict[str, Any]]) -> str:
    rows = []
    for key, info in models.items():
        rows.append([MODELS.get(key, key), f"{info['parameters'] / 1e9:.3f}B",
                     f"{info['bytes'] / 1e9:.2f}",
                     figure(samples, f"torch:{key}").text(),
                     figure(samples, f"http:{key}").text(),
                     figure(samples, f"http_file:{key}").text(),
                     figure(samples, f"engine_file:{key}").text(),
                     figure(samples, f"engine:{key}").text()])
    return markdown_table(["model", "params", "GB", "torch init + save_file",
                           "weightinit HTTP -> client", "HTTP -> client -> file",
                           "engine -> file", "engine, generate only"], rows)


def _rates_table(samples: Samples, models: dict[str, dict[str, Any]]) -> str:
    rows = []
    for key, info in models.items():
        per_param = 1e9 / info["parameters"]
        rows.append([MODELS.get(key, key),
                     figure(samples, f"torch:{key}", "init_s").text(),
                     figure(samples, f"torch:{key}", "save_s").text(),
                     f"{figure(samples, f'torch:{key}').median * per_param:.2f}",
                     rate(samples, f"http:{key}").text(),
                     f"{figure(samples, f'http:{key}').median * per_param:.2f}",
                     figure(samples, f"http:{key}", "server_cpu_s").text(),
                     rate(samples, f"engine:{key}").text(),
                     _speedup(samples, f"torch:{key}", f"http:{key}").text(2, "x"),
                     paired(samples, f"torch:{key}", f"http:{key}",
                            value=lambda run: run.get("init_s", run["seconds"])).text(2, "x")])
    return markdown_table(["model", "torch init s", "torch save s", "torch ns/param",
                           "HTTP GB/s", "HTTP ns/param", "server CPU s per stream",
                           "engine GB/s", "HTTP speed-up vs torch",
                           "HTTP vs torch's init alone (no save)"], rows)


def _limits_table(samples: Samples, nbytes: int) -> str:
    rows = []
    for name, label in (("limit_sfc64", "numpy SFC64 random_raw, all cores"),
                        ("limit_philox", "numpy Philox random_raw, all cores"),
                        ("limit_memcpy", "memcpy (np.copyto, one thread)"),
                        ("limit_http", "HTTP ceiling: uvicorn, preallocated buffer"),
                        ("engine:llama_bf16", "weightinit engine, bf16 normal, 2 workers"),
                        ("engine:llama_f32", "weightinit engine, f32 normal, 2 workers"),
                        ("engine:convmlp_f32", "weightinit engine, f32 uniform, 2 workers")):
        runs = samples.get(name, [])
        if not runs:
            continue
        count = runs[0].get("words") or runs[0].get("elements")
        per = (f"{figure(samples, name).median / count * 1e9:.2f}" if count else "")
        rows.append([label, rate(samples, name).text(), per])
    return (f"Bytes: {nbytes / 1e9:.2f} GB (the 1B bf16 file) for the raw bits, memcpy and "
            "ceiling; each engine row its own model.\n\n"
            + markdown_table(["limit", "GB/s", "ns per 64-bit word / element"], rows))


def _transports_table(samples: Samples) -> str:
    rows = []
    names = sorted((n for n in samples if n.startswith("transport:")),
                   key=lambda n: tuple(samples[n][0]["order"]))
    for name in names:
        runs = samples[name]
        cpu_per_gb = Summary.of([r["server_cpu_s"] / (r["bytes"] / 1e9) for r in runs])
        rows.append([name.split(":", 1)[1], rate(samples, name).text(), cpu_per_gb.text()])
    if not rows:
        return "(not measured)"
    nbytes = samples[names[0]][0]["bytes"]
    return (f"uvicorn streaming a preallocated body to the same client, {nbytes / 1e9:.2f} GB "
            "per run (4 downloads)."
            "\n\n" + markdown_table(["uvicorn protocol + loop, write size", "GB/s",
                                      "server CPU s per GB"], rows))


def _memory_table(samples: Samples, models: dict[str, dict[str, Any]]) -> str:
    rows = []
    for key, info in models.items():
        label = f"{MODELS.get(key, 'Llama-style, bf16')}, {info['parameters'] / 1e9:.2f}B"
        server = figure(samples, f"http:{key}", "peak_rss_mib")
        torch = figure(samples, f"torch:{key}", "peak_rss_mib")
        idle = figure(samples, f"http:{key}", "idle_rss_mib")
        rows.append([label, idle.text(0), server.text(0), torch.text(0)])
    return markdown_table(["stream", "server RSS before, MiB", "server peak RSS, MiB",
                           "torch peak RSS, MiB"], rows)


def _latency_table(samples: Samples) -> str:
    rows = []
    for name, label in (("latency_plan", "/v1/plan, 32-block transformer, new seed each"),
                        ("latency_plan_cached", "/v1/plan, same request (plan cache hit)"),
                        ("latency_init", "/v1/init small MLP round trip, new seed each"),
                        ("latency_init_cached", "/v1/init small MLP, same request")):
        rows.append([label, figure(samples, name, "p50_ms").text(),
                     figure(samples, name, "p99_ms").text()])
    return markdown_table(["request (keep-alive)", "p50 ms", "p99 ms"], rows)


def _costs_table(samples: Samples) -> str:
    rows = []
    for key in ("llama_bf16", "convmlp_f32"):
        base = f"engine:{key}"
        model = MODELS[key]
        rows.append([model, "generate, 2 workers (reference)", figure(samples, base).text(),
                     "1.00"])
        for side, label in (("engine_1worker", "generate, 1 worker"),
                            ("engine_stats", "generate + moments (with_stats)"),
                            ("engine_report", "generate + moments + sha256s (report path)")):
            name = f"{side}:{key}"
            if name in samples:
                rows.append([model, label, figure(samples, name).text(),
                             paired(samples, name, base).text()])
    rows.append([MODELS["llama_bf16"], "HTTP, file only", figure(samples, "http:llama_bf16")
                 .text(), "1.00"])
    rows.append([MODELS["llama_bf16"], "HTTP, multipart file + report",
                 figure(samples, "http_report:llama_bf16").text(),
                 paired(samples, "http_report:llama_bf16", "http:llama_bf16").text()])
    return markdown_table(["model", "what", "seconds", "time / reference"], rows)


def render_markdown(samples: Samples, meta: dict[str, Any]) -> str:
    """All tables, in the order of the issue, with the conditions of the run."""
    models = meta["models"]
    streamed = {k: v for k, v in models.items() if k != BIG}
    load = meta["load"]
    parts = [
        f"Measured {meta['date']} on {meta['cpus']} cores ({meta['cpu_model']}), "
        f"files written to {meta.get('files_fs', '?')}, "
        f"{meta['runs']} interleaved run(s){' (QUICK MODE, small sizes)' if meta['quick'] else ''}"
        f"; load average {load['start']:.2f} at the start, {load['max']:.2f} at most between "
        f"runs, {load['end']:.2f} at the end (after each run: "
        f"{', '.join(f'{v:.1f}' for v in load['per_run'])}). Figures are medians with "
        "(min-max).",
        "### End to end, seconds per file\n\n" + _seconds_table(samples, streamed),
        "### Rates\n\n" + _rates_table(samples, streamed),
        "### Limits\n\n" + _limits_table(samples, models["llama_bf16"]["bytes"]),
        "### HTTP transport choices\n\n" + _transports_table(samples),
        "### Memory\n\n" + _memory_table(samples, models),
        "### Latency\n\n" + _latency_table(samples),
        "### Scaling and the cost of statistics\n\n" + _costs_table(samples),
        "### Targets\n\n" + targets_table(targets(samples)),
    ]
    return "\n\n".join(parts) + "\n"
