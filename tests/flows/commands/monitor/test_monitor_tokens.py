"""The monitor's token figures on real texts: how the champion's tokenizer read served BBC articles (windows per
text, unknown tokens) against its train split. Unseen articles pass; words in a script the tokenizer never saw
raise the unknown-token rate to warn, then fail; texts twice as long shift the windows. No text is logged:
the counts alone say it. A champion registered before the profile kept the figures, and rows logged by a
server older than the counts, skip them with the reason."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from flows.commands.monitor.core import NO_COUNTS, MonitorReport, Reference, compare, read_log
from flows.commands.monitor.page import monitor_series, render_monitor_page
from stages.config.monitor import MonitorParams
from tests.flows.commands.monitor.support import World, now, pick, served_rows, write_log
from tests.stages.reports.test_run_page import outline

PARAMS = MonitorParams(min_rows=100, max_texts=200)
# Latin letters to Greek ones: BBC's words in a script the champion's tokenizer (built from BBC) never saw
GREEK = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "αβψδεφγηιξκλμνοπθρστυωςχυζ" * 2
)


def monitor(world: World, texts: list[str], folder: Path, ref: Reference | None = None) -> MonitorReport:
    end = now()
    write_log(folder, served_rows(world.model, texts, end, counter=world.counter), log_texts=False)
    start = end - timedelta(hours=24)
    return compare(read_log(folder, start), ref or world.reference, PARAMS, start, end)


def token_figures(report: MonitorReport) -> dict[str, tuple[float | None, str]]:
    return {
        f.name: (f.value, f.outcome) for f in report.figures if f.name in ("windows_js", "unk_rate_increase")
    }


def greek_words(text: str, every: int) -> str:
    """`text` with every `every`-th word written in Greek letters."""
    words = text.split()
    return " ".join(w.translate(GREEK) if i % every == every - 1 else w for i, w in enumerate(words))


def unseen_texts(world: World, n: int = 250) -> list[str]:
    return [r["text"] for r in pick(world.unseen, n)]


def test_traffic_from_the_champions_own_distribution_passes_the_token_figures(
    world: World, tmp_path: Path
) -> None:
    report = monitor(world, unseen_texts(world), tmp_path)
    got = token_figures(report)
    assert got["windows_js"][1] == "pass" and got["unk_rate_increase"] == (0.0, "pass"), got
    assert report.outcome == "pass", report.reason  # with label_js and confidence_drop; no texts logged
    assert report.unknown == {"served_rate": 0.0, "champion_train_share": 0.0}
    served, train = report.window_shares["served"], report.window_shares["champion_train"]
    assert abs(sum(served.values()) - 1) < 1e-3 and set(served) <= set(train) | {"1"}, (served, train)
    end = datetime.fromisoformat(str(report.window["end"]))
    rows = read_log(tmp_path, end - timedelta(hours=24))
    page = render_monitor_page(report, monitor_series(rows, world.reference, end - timedelta(hours=24), end))
    found = outline(page)
    assert found.charts.get("windows", 0) > 0 and "0.00% of the served tokens" in "".join(found.text)


def test_words_in_an_unknown_script_raise_the_unknown_token_rate(world: World, tmp_path: Path) -> None:
    texts = unseen_texts(world)
    some = monitor(world, [greek_words(t, 30) for t in texts], tmp_path / "some")  # one word in 30
    value, outcome = token_figures(some)["unk_rate_increase"]
    assert outcome == "warn" and value is not None and 0.01 < value < 0.05, value
    assert token_figures(some)["windows_js"][1] == "pass"  # as many words, as many windows
    many = monitor(world, [greek_words(t, 10) for t in texts], tmp_path / "many")  # one word in 10
    assert token_figures(many)["unk_rate_increase"][1] == "fail" and many.outcome == "fail"
    assert "unknown-token rate above the champion's train split's" in many.reason


def test_much_longer_texts_shift_the_windows(world: World, tmp_path: Path) -> None:
    """Two unseen articles run together: most texts are cut, few are read as 2 to 5 windows."""
    rows = pick(world.unseen, 400, seed=1)
    texts = [f"{a['text']} {b['text']}" for a, b in zip(rows[0::2], rows[1::2], strict=True)]
    report = monitor(world, texts, tmp_path)
    value, outcome = token_figures(report)["windows_js"]
    assert outcome == "fail" and value is not None and value > PARAMS.windows_js_fail, value
    assert report.window_shares["served"]["cut"] > 0.5 > report.window_shares["champion_train"]["cut"]
    assert token_figures(report)["unk_rate_increase"][1] == "pass"


def test_an_older_champion_or_an_older_server_skips_the_token_figures(world: World, tmp_path: Path) -> None:
    old = world.reference.profile.model_copy(update={"windows_hist": None, "unk_share": None})
    report = monitor(
        world, unseen_texts(world), tmp_path / "champion", Reference("3", old, world.reference.predictions)
    )
    skipped = {f.name: f.reason for f in report.figures if f.outcome == "skip"}
    assert "registered before ftpipe kept it" in skipped["windows_js"], skipped
    assert "unknown-token share" in skipped["unk_rate_increase"]
    assert report.outcome == "pass" and report.unknown["champion_train_share"] is None

    end = now()  # rows as a server older than the counts logged them: no tokens, windows or unknown tokens
    write_log(tmp_path / "server", served_rows(world.model, unseen_texts(world), end), log_texts=False)
    rows = read_log(tmp_path / "server", end - timedelta(hours=1))
    report = compare(rows, world.reference, PARAMS, end - timedelta(hours=1), end)
    assert {f.name: f.reason for f in report.figures}["windows_js"] == NO_COUNTS
    assert report.outcome == "pass" and report.unknown["served_rate"] is None
