"""``report.html`` of ``clvbayes demo`` opened in headless Chromium: every image loads, the key
numbers are on the page, and a screenshot is saved (``test-artifacts/report.png``).

Chromium is Debian's ``chromium`` package at ``/usr/bin/chromium`` (installed by ``.ci/run``),
driven by playwright's Python package (no browser download). On a developer machine without
Chromium the test is skipped; in CI (``CI=true``) a missing browser is a failure.
"""

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from clvbayes.report.html import fmt

CHROMIUM = os.environ.get("CLVBAYES_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
# as the machine notes advise: no background networking on a closed network
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser_page():
    if not (os.path.exists(CHROMIUM) and shutil.which(CHROMIUM)):
        if os.environ.get("CI") == "true":
            pytest.fail(f"Chromium not found at {CHROMIUM}: .ci/run installs Debian's chromium package.")
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            yield page
        finally:
            browser.close()


def test_report_opens_in_chromium_with_images_and_key_numbers(demo_report, browser_page):
    folder, _, _, code = demo_report
    assert code == 0
    page = browser_page
    failed_requests = []
    page.on("requestfailed", lambda request: failed_requests.append(request.url))
    page.goto((folder / "report.html").resolve().as_uri())
    page.wait_for_load_state("load")

    assert page.title().startswith("clvbayes report")
    images = page.eval_on_selector_all(
        "img", "imgs => imgs.map(i => ({alt: i.alt, complete: i.complete, w: i.naturalWidth, h: i.naturalHeight}))"
    )
    assert len(images) == 13
    broken = [img["alt"] for img in images if not (img["complete"] and img["w"] > 100 and img["h"] > 100)]
    assert not broken, f"images that did not load: {broken}"
    assert not failed_requests

    text = page.inner_text("body")
    summary = json.loads((folder / "summary.json").read_text())
    equity = summary["equity"]["total"]
    for number in (fmt(equity["mean"]), fmt(equity["hdi_3%"]), fmt(equity["hdi_97%"])):
        assert number in text, number
    assert "2,357" in text and "1,882 actual" in text
    assert f"{100 * summary['concentration']['0.2']['mean']:.1f}%" in text
    assert fmt(summary["holdout"]["total_purchases"]["mean"]) in text
    for section in ("Key figures", "Models and diagnostics", "Holdout check", "Customer value and equity",
                    "Churn", "Customers", "Settings", "Citing"):
        assert re.search(rf"^{re.escape(section)}$", text, flags=re.M), section

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
