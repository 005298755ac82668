"""`ftpipe monitor` on a multi-label champion's window: answers are "|"-joined sets, and the label mix
counts each label of a set once (per-label shares) on both sides; a single-label champion is unchanged."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from flows.commands.monitor.core import Reference, compare, label_counts, read_log
from stages.config.monitor import MonitorParams
from stages.reports.profile import DataProfile
from tests.flows.commands.monitor.support import now, write_log
from tests.registry_support import make_profile

SETS = ["billing", "billing|bug", "bug", "bug|feature", "billing|bug|feature"]


def _reference(label_sets: bool) -> Reference:
    rows = {s: [{"id": f"{s}{i}", "group": f"{s}{i}", "label": "billing", "text": "a b c"} for i in range(4)]
            for s in ("train", "validation", "test")}  # fmt: skip
    profile = make_profile(rows)
    if label_sets:
        profile["label_sets"] = {"cardinality": {"train": {"mean": 1.6, "max": 3}}, "top_pairs": []}
    preds = pd.DataFrame({"pred": SETS * 4, "score": [0.7] * 20})
    return Reference("3", DataProfile.model_validate(profile), preds)


def _rows(labels: list[str]) -> list[dict[str, object]]:
    end = now()
    return [
        {"time": end - timedelta(seconds=60 + i), "request_id": f"r{i}", "row": 0, "version": "3", "label": lbl,
         "score": 0.6, "probabilities": [("billing", 0.6), ("bug", 0.4), ("feature", 0.2)], "tokens": None,
         "unknown_tokens": None, "windows": None, "truncated": None, "text": "a served text"}
        for i, lbl in enumerate(labels)
    ]  # fmt: skip


def test_a_window_of_label_sets_is_judged_on_per_label_shares(tmp_path: Path) -> None:
    write_log(tmp_path, _rows(["billing|bug"] * 30 + ["feature"] * 10))
    end = now()
    report = compare(read_log(tmp_path, end - timedelta(hours=1)), _reference(True), MonitorParams(min_rows=10),
                     end - timedelta(hours=1), end)  # fmt: skip
    assert report.label_shares["served"] == pytest.approx(
        {"billing": 0.4286, "bug": 0.4286, "feature": 0.1429}, abs=1e-3
    )
    assert set(report.label_shares["champion_test"]) == {"billing", "bug", "feature"}
    label_js = next(f for f in report.figures if f.name == "label_js")
    assert label_js.value is not None and 0 < label_js.value < 1
    assert any("per-label shares" in n for n in report.notes)


def test_one_label_per_text_counts_whole_labels() -> None:
    labels = pd.Series(["a|b", "a|b", "c"])  # a single-label class may hold "|": never split
    assert label_counts(labels, sets=False).to_dict() == {"a|b": 2, "c": 1}
    assert label_counts(labels, sets=True).to_dict() == {"a": 2, "b": 2, "c": 1}
