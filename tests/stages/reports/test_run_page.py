"""The run page (stages/reports/run_page.py over stages/reports/html.py): every part drawn from the default
run's reports, nothing fetched, every text from the data escaped. tests/test_pages_browser.py renders it
in a real browser."""

from __future__ import annotations

from html.parser import HTMLParser

from stages.reports.html import bar_chart, esc, table
from stages.reports.run_page import Prediction, calibration, confusion_counts, render_run_page
from tests.stages.reports.run_page_inputs import HOSTILE, run_page

RUN_CHARTS = {"metrics", "champion", "confusion", "per_class", "calibration", "drift"}
MARKS = {"rect", "circle", "polyline"}


class Outline(HTMLParser):
    """The tags of a page, the marks inside each chart, and every attribute that could fetch something."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.charts: dict[str, int] = {}
        self.current: str | None = None
        self.fetching: list[tuple[str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        found = dict(attrs)
        if tag == "svg":
            self.current = found["data-chart"] or ""
            self.charts[self.current] = 0
        elif self.current is not None and tag in MARKS:
            self.charts[self.current] += 1
        self.fetching += [(k, v or "") for k, v in attrs if k in ("src", "href", "xlink:href", "action")]

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self.current = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def outline(page: str) -> Outline:
    parsed = Outline()
    parsed.feed(page)
    return parsed


def test_the_run_page_draws_every_chart_from_the_default_runs_reports() -> None:
    page = render_run_page(run_page())
    found = outline(page)
    assert set(found.charts) == RUN_CHARTS
    assert all(n > 0 for n in found.charts.values()), found.charts
    text = "".join(found.text)
    assert "ftpipe-bbc-news version 2: promote (registered), champion 2, 2025-06-02 03:00 UTC" in text
    for part in ("TF-IDF baseline", "Confusion matrix", "Per class", "Calibration", "Drift", "Gate"):
        assert part in text
    assert "non_inferiority" in text and "label JS distance 0.000" in text  # the gate and drift.json


def test_the_page_fetches_nothing() -> None:
    page = render_run_page(run_page())
    found = outline(page)
    assert found.fetching == []
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(found.tags)
    assert "default-src 'none'" in page  # and the browser is told to refuse any fetch
    assert "http://" not in page.replace("xmlns='http://www.w3.org/2000/svg'", "")
    assert "https://" not in page


def test_hostile_labels_and_names_are_escaped() -> None:
    page = render_run_page(run_page(hostile=True))
    assert "<script" not in page
    assert esc(HOSTILE) in page
    found = outline(page)
    assert "script" not in found.tags
    assert HOSTILE in "".join(found.text)  # shown as text, in the title, tables and chart labels
    assert all(n > 0 for n in found.charts.values())


def test_confusion_and_calibration_count_every_prediction() -> None:
    inputs = run_page()
    counts = confusion_counts(inputs.predictions, inputs.labels)
    assert sum(map(sum, counts)) == len(inputs.predictions) == 338
    per_class = inputs.metrics.model.dump()["per_class"]
    # the diagonal is what metrics.json says: each class's recall times its support
    assert [counts[i][i] for i in range(len(counts))] == [
        round(per_class[c]["recall"] * per_class[c]["support"]) for c in inputs.labels
    ]
    bins = calibration(inputs.predictions, 10)
    assert sum(n for n, _, _ in bins) == 338
    assert bins[0] == (0, None, None)
    edge = calibration([Prediction("a", "a", 1.0), Prediction("a", "b", 0.0)], 4)
    assert edge[3] == (1, 1.0, 1.0) and edge[0] == (1, 0.0, 0.0)  # a score of 1.0 falls in the last bin


def test_a_first_version_without_champion_or_drift_says_so() -> None:
    inputs = run_page(action="unchanged")
    gate = inputs.registry.gate
    assert gate is not None
    stored = gate.dump() | {"comparison": None, "drift": None, "champion_before": None}
    registry = inputs.registry.model_copy(update={"gate": type(gate).model_validate(stored)})
    page = render_run_page(type(inputs)(**{**inputs.__dict__, "registry": registry, "drift": None}))
    found = outline(page)
    assert "champion" not in found.charts and "drift" not in found.charts
    text = "".join(found.text)
    assert "no champion (the first version)" in text and "No drift figures" in text
    assert "(unchanged)" in text


def test_tables_and_bars_escape_and_mark_zero() -> None:
    cell = table(["<b>"], [["<i>", 0.5]])
    assert "&lt;b&gt;" in cell and "&lt;i&gt;" in cell and "0.5000" in cell
    zero = bar_chart("z", ["a"], {"s": [0.0]}, "zero")
    assert "height='1.0'" in zero  # a zero is a hairline, still a mark
