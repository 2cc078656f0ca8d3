"""The HTML report opened in a real headless browser (Debian's chromium driven by Playwright).

tests/run-all installs chromium; here the test fails in CI when the browser is missing and is
skipped elsewhere.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest
from test_bench_results import _doc, _row, _saved, _spread

from benchmarks import report

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _browser():  # type: ignore[no-untyped-def]
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not Path(CHROMIUM).exists():
        why = "needs Debian's chromium and pip's playwright (tests/run-all installs both)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return sync_playwright


def test_the_html_report_is_self_contained_and_renders(tmp_path: Path) -> None:
    sync_playwright = _browser()
    runs = []
    for seed, centre in ((1, 10.0), (2, 12.0)):
        doc = _doc(_spread(centre, 12, seed))
        doc["rows"] += [dataclasses.replace(_row("unet3d fp32", _spread(5.0, 12, seed)), benchmark="workload", unit="samples/s").to_dict(),
                        dataclasses.replace(_row("logformer fp32", [900.0, 100.0, 2500.0]), benchmark="workload", unit="tokens/s").to_dict()]
        runs.append(report.load(_saved(tmp_path / "results", doc)))
    md = report.render(runs, tmp_path / "rep")
    page_file = md.parent / "report.html"
    (md.parent / "matmul-tflops.png").unlink()  # the page must not need the PNG files beside it
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_file.as_uri())
            assert page.title() == "Benchmark report"
            images = page.evaluate("Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 0])")
            cells = page.locator("td").all_inner_texts()
        finally:
            browser.close()
    assert [alt for alt, _ in images] == ["matmul (TFLOPS)", "workload (samples/s)", "workload (tokens/s)"]
    assert all(ok for _, ok in images), images  # every plot decoded from its inline data
    assert all(u.startswith(("file:", "data:")) for u in requests), requests  # nothing fetched from elsewhere
    assert any(c.startswith("faster (x1.2") and "Mann-Whitney p=" in c for c in cells)
    assert any(c.startswith("not comparable: the baseline has 3 sample(s)") for c in cells)
