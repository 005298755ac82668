"""A label-set run's page in the real headless browser of tests/test_pages_browser.py: every chart drawn
with marks of its own, nothing fetched, a label named `<script>...` shown as text and run nowhere.

    .venv/bin/pytest tests/stages/reports/test_run_page_multilabel_browser.py -q -p no:cacheprovider
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stages.reports.run_page import render_run_page
from tests.stages.reports.run_page_inputs import HOSTILE
from tests.stages.reports.run_page_sets import set_page, set_run
from tests.test_pages_browser import RUN_CHARTS, browser, visit

__all__ = ["browser"]  # the module's browser fixture, shared


def test_the_label_set_page_draws_offline_and_hostile_text_is_text(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    path.write_text(render_run_page(set_page(set_run(hostile=True))), encoding="utf-8")
    seen = visit(browser, path)
    assert {c["name"] for c in seen["charts"]} == RUN_CHARTS
    for c in seen["charts"]:
        assert c["width"] > 0 and c["height"] > 0 and c["marks"] > 0, c
    assert seen["requests"] == [path.as_uri()]
    assert seen["scripts"] == 0 and seen["dialogs"] == []
    assert HOSTILE in seen["text"] and "(none)" in seen["text"]
    assert "Binary expected calibration error" in seen["text"]
