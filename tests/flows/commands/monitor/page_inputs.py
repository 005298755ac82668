"""One monitor window for the page's tests, without training a model: BBC texts served over six hours.

The champion's reference is a profile of 300 BBC articles and "test predictions" that are their labels
with a fixed confidence; the served rows are 120 other articles spread evenly over the window, labelled
as the reference would, with `hostile=True` one label renamed to a `<script>` as a user's label could be.
"""

from __future__ import annotations

import functools
import random
from datetime import datetime, timedelta, timezone

import pandas as pd

from flows.commands.monitor.core import MonitorReport, Reference, compare
from flows.commands.monitor.page import MonitorSeries, monitor_series
from stages.config.monitor import MonitorParams
from stages.reports.profile import DataProfile
from tests.flows.commands.monitor.support import VERSION, bbc_rows
from tests.registry_support import make_profile

HOSTILE = "<script>alert('x')</script>"
END = datetime(2025, 6, 2, 12, 0, tzinfo=timezone.utc)
HOURS = 6


@functools.cache
def _corpus() -> list[dict[str, str]]:
    return bbc_rows()  # read once for every window of the session (callers copy the rows they change)


def window(
    hostile: bool = False, served: int = 120, texts: bool = True
) -> tuple[MonitorReport, MonitorSeries]:
    """The report and the page's series of a six-hour window of `served` BBC rows."""
    rows = [dict(r) for r in random.Random(0).sample(_corpus(), 300 + served)]
    rename = {"tech": HOSTILE} if hostile else {}
    for r in rows:
        r["label"] = rename.get(r["label"], r["label"])
    ref_rows, pool = rows[:300], rows[300 : 300 + served]
    profile = DataProfile.model_validate(
        make_profile({"train": ref_rows[:200], "validation": ref_rows[200:250], "test": ref_rows[250:]}, 100)
    )
    preds = pd.DataFrame(
        {"id": [r["id"] for r in ref_rows], "pred": [r["label"] for r in ref_rows], "score": 0.9}
    )
    ref = Reference(VERSION, profile, preds)
    start = END - timedelta(hours=HOURS)
    step = timedelta(hours=HOURS) / max(len(pool), 1)
    log = pd.DataFrame(
        {
            "time": [start + step * (i + 0.5) for i in range(len(pool))],
            "version": VERSION,
            "label": [r["label"] for r in pool],
            "score": [0.6 + 0.3 * ((i * 7) % 10) / 10 for i in range(len(pool))],
            "text": [r["text"] if texts else None for r in pool],
        }
    )
    p = MonitorParams(min_rows=20, max_texts=100)
    return compare(log, ref, p, start, END), monitor_series(log, ref, start, END)
