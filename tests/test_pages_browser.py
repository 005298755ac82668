"""The run's page and the monitor's page in a real headless browser: every chart drawn, nothing fetched,
hostile text shown as text.

    .venv/bin/pytest tests/test_pages_browser.py -q -p no:cacheprovider

Playwright (requirements.lock) drives Debian's `chromium` (`apt-get install chromium`; `.ci/run` installs
it where it is missing): Playwright's own browser download is not used. Both pages carry a class and a
model named `<script>alert('x')</script>`; the browser must show it as text and run nothing. One browser
for the module; each page in a context that aborts, and records, every request but its own file.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flows.commands.monitor.page import render_monitor_page
from stages.reports.run_page import render_run_page
from tests.flows.commands.monitor.page_inputs import window
from tests.stages.reports.run_page_inputs import HOSTILE, run_page

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
RUN_CHARTS = {"metrics", "champion", "confusion", "per_class", "calibration", "drift"}
MONITOR_CHARTS = {"figures", "label_share", "confidence", "label_mix", "lengths"}

# each chart: its box on the page and its marks (rect, circle, polyline) that have a size of their own
MEASURE = """els => els.map(e => {
  const box = e.getBoundingClientRect();
  const marks = [...e.querySelectorAll('rect, circle, polyline')].filter(m => {
    const b = m.getBBox(); return b.width > 0 || b.height > 0; });
  return {name: e.dataset.chart, width: box.width, height: box.height, marks: marks.length};
})"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed: `pip install -r requirements.lock`"
    )
    if not Path(CHROMIUM).is_file():
        pytest.skip("no chromium to render the pages in: `apt-get install chromium` (.ci/run does it)")
    with sync_api.sync_playwright() as pw:
        # root in CI has no user namespace for chromium's sandbox; the pages are our own files
        found = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield found
        found.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pages")
    run, monitor = folder / "report.html", folder / "monitor.html"
    run.write_text(render_run_page(run_page(hostile=True)), encoding="utf-8")
    monitor.write_text(render_monitor_page(*window(hostile=True)), encoding="utf-8")
    return {"run": run, "monitor": monitor}


def visit(browser: Any, path: Path) -> dict[str, Any]:
    """Open `path`: the charts measured, the text shown, every request made and every dialog opened."""
    url = path.as_uri()
    context = browser.new_context()
    requests: list[str] = []
    dialogs: list[str] = []

    def only_itself(route: Any) -> None:
        if route.request.url == url:
            route.continue_()
        else:
            route.abort()

    context.route("**/*", only_itself)
    page = context.new_page()
    page.on("request", lambda r: requests.append(r.url))

    def dialog(d: Any) -> None:  # an alert() would mean the hostile text ran as a script
        dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    page.goto(url, wait_until="load")
    seen = {
        "charts": page.eval_on_selector_all("[data-chart]", MEASURE),
        "text": page.inner_text("body"),
        "title": page.title(),
        "scripts": page.eval_on_selector_all("script", "els => els.length"),
        "requests": requests,
        "dialogs": dialogs,
    }
    context.close()
    return seen


@pytest.mark.parametrize(("name", "charts"), [("run", RUN_CHARTS), ("monitor", MONITOR_CHARTS)])
def test_every_chart_is_drawn_offline_and_hostile_text_is_text(
    browser: Any, pages: dict[str, Path], name: str, charts: set[str]
) -> None:
    seen = visit(browser, pages[name])
    assert {c["name"] for c in seen["charts"]} == charts
    for c in seen["charts"]:
        assert c["width"] > 0 and c["height"] > 0 and c["marks"] > 0, c
    assert seen["requests"] == [pages[name].as_uri()]  # nothing but the page itself, not even attempted
    assert seen["scripts"] == 0 and seen["dialogs"] == []
    assert HOSTILE in seen["text"]
    if name == "run":
        assert HOSTILE in seen["title"]
