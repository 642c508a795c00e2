"""The ``/ui`` page in a real headless Chromium against a real ``weightinit serve``.

Needs Debian's chromium at ``/usr/bin/chromium`` and the ``playwright`` Python package
(used as a driver only: ``playwright install`` is never run, the system browser is
launched by path). ``.ci/browser-deps.sh`` installs both; without them the tests skip.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

CHROMIUM = Path(os.environ.get("WEIGHTINIT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 60_000  # a liveness bound for slow CI machines, not a performance assertion

if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (run .ci/browser-deps.sh)", allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (run .ci/browser-deps.sh)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser, server) -> Iterator[object]:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1440, "height": 1200})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.problems = []
    page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
    page.on("console", lambda message: message.type == "error"
            and page.problems.append(f"console error: {message.text}"))
    page.goto(f"{server.base_url}/ui")
    page.wait_for_selector("body[data-ready]")
    try:
        yield page
    finally:
        context.close()


def generated_runs(page) -> int:
    return int(page.get_attribute("body", "data-generated") or 0)


def pick_example(page, example: str) -> None:
    # The page plans and generates its first example by itself: wait for a generation
    # that started after this pick, not for that one (a race: Download then found the
    # report of the new plan not there yet).
    before = generated_runs(page)
    page.select_option("#example", example)
    page.wait_for_function(
        "() => document.querySelectorAll('#plan-table tbody tr').length > 0"
        f" && Number(document.body.dataset.generated || 0) > {before}")


def test_seed_example_plans_generates_and_draws_every_chart(page) -> None:
    pick_example(page, "mlp-glorot")
    rows = page.locator("#plan-table tbody tr")
    assert [rows.nth(i).get_attribute("data-tensor") for i in range(rows.count())] == [
        "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert "glorot_uniform" in rows.nth(0).inner_text()

    before = generated_runs(page)
    page.click("#generate-button")
    page.wait_for_function(f"() => Number(document.body.dataset.generated) > {before}")

    # expected and observed bars for the two weights (the zero-variance biases are left out)
    assert page.locator("#variance-chart svg g.bars rect.bar").count() == 4
    lines = page.locator("#propagation-chart svg g.lines path.line")
    assert lines.count() == 4  # forward/backward x analytic/measured
    for i in range(4):
        assert len(lines.nth(i).get_attribute("d")) > 10  # a drawn path, not an empty one
    assert page.locator("#propagation-chart svg g.lines circle.marker").count() >= 4
    assert "No layer flagged" in page.inner_text("#flags")
    assert page.locator("#histogram-chart svg g.bars rect.bar").count() == 50
    assert len(page.locator("#histogram-chart svg path.theory").get_attribute("d")) > 100
    assert page.locator("#plan-table tbody tr").nth(0).locator("td").nth(6).inner_text() != ""
    assert page.problems == []


def test_download_has_the_sha256_of_the_servers_report(page, server, tmp_path: Path) -> None:
    pick_example(page, "mlp-glorot")
    with page.expect_download() as download_info:
        page.click("#download-button")
    saved = tmp_path / "weights.safetensors"
    download_info.value.save_as(saved)
    digest = hashlib.sha256(saved.read_bytes()).hexdigest()
    spec = page.evaluate("() => JSON.parse(document.getElementById('spec').value)")
    report = httpx.post(f"{server.base_url}/v1/report", json=spec, timeout=60).json()
    assert digest == report["file_sha256"]
    page.wait_for_selector("#download-sha256")
    assert page.inner_text("#download-sha256") == digest  # computed in the page
    assert "matches" in page.inner_text("#download-info")
    assert page.problems == []


def test_bad_init_example_highlights_flagged_layers(page) -> None:
    pick_example(page, "bad-normal")
    page.wait_for_selector("#propagation-chart svg rect.flagged")
    assert page.locator("#propagation-chart svg g.background rect.flagged").count() == 8
    assert "exploding" in page.inner_text("#flags")


def test_invalid_spec_shows_the_field_at_fault(page) -> None:
    page.fill("#spec", '{"seed": 1, "layers": [{"type": "linear", "name": "a", '
                       '"in_features": -1, "out_features": 2}]}')
    page.click("#plan-button")
    page.wait_for_selector("#error:not([hidden])")
    assert "layers.0.in_features" in page.inner_text("#error")


def test_sha256_fallback_agrees_with_web_crypto(page) -> None:
    """Off localhost and https the page has no crypto.subtle and uses its own sha256."""
    mismatches = page.evaluate("""async () => {
        const { sha256Fallback } = await import("./ui/sha256.js");
        const bad = [];
        for (const size of [0, 1, 55, 56, 63, 64, 65, 1000, 100003]) {
            const bytes = new Uint8Array(size).map((_, i) => (i * 2654435761) >>> 24);
            const digest = await crypto.subtle.digest("SHA-256", bytes);
            const hex = Array.from(new Uint8Array(digest),
                                   (b) => b.toString(16).padStart(2, "0")).join("");
            if (sha256Fallback(bytes.buffer) !== hex) bad.push(size);
        }
        return bad;
    }""")
    assert mismatches == []
