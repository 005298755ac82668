"""`ftpipe init` sets no floor for a new task and says which gate its first version will meet, and why."""

from __future__ import annotations

import yaml

from flows.commands.init import InitResult, dataset_keys, edit_params, render
from tests.conftest import REPO

SHIPPED = (REPO / "params.yaml").read_text(encoding="utf-8")


def test_an_old_floor_set_for_another_dataset_is_cleared() -> None:
    old = SHIPPED.replace("min_primary: null", "min_primary: 0.9")
    assert old != SHIPPED
    text, changes = edit_params(
        old, dataset_keys("tickets", "data/external/t.csv", "text", "label", None), {}
    )
    assert ("register.gate.min_primary", 0.9, None) in changes
    assert yaml.safe_load(text)["register"]["gate"]["min_primary"] is None


def test_init_says_what_the_first_version_must_beat() -> None:
    result = InitResult("tickets", "data/external/t.csv", [], 40, 0, {"a": 20, "b": 20}, baseline_margin=0.01)
    out = render(result)
    assert "first version of `tickets`" in out and "TF-IDF baseline" in out
    assert "+0.0100 (register.gate.baseline_margin)" in out
    assert "no absolute floor (register.gate.min_primary: null)" in out
