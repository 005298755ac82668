"""validate's data profile: the compact profile's sample changes as little as the data does."""

from __future__ import annotations

from stages.data.profile import bottom_k_sample
from tests.stages.data.test_integrity import frames, rows


def test_the_sample_keeps_its_rows_when_data_grows() -> None:
    f = frames()
    small = {r["id"] for r in bottom_k_sample(f, 30, 100)}
    grown = frames(train=rows(60, "train", batch="2026-11.csv"))
    large = {r["id"] for r in bottom_k_sample(grown, 30, 100)}
    # a row leaves the sample only for a new row that hashes lower: every old row still in it was in it before
    assert {i for i in large if i.startswith("2026-10")} <= small
