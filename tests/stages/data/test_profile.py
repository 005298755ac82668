"""validate's data profile: the compact profile's sample changes as little as the data does; its windows and
unknown-token figures per split."""

from __future__ import annotations

from stages.config.validate import ValidateParams
from stages.data.profile import bottom_k_sample, compact_profile
from tests.stages.data.test_integrity import CLASSES, frames, rows


def test_the_sample_keeps_its_rows_when_data_grows() -> None:
    f = frames()
    small = {r["id"] for r in bottom_k_sample(f, 30, 100)}
    grown = frames(train=rows(60, "train", batch="2026-11.csv"))
    large = {r["id"] for r in bottom_k_sample(grown, 30, 100)}
    # a row leaves the sample only for a new row that hashes lower: every old row still in it was in it before
    assert {i for i in large if i.startswith("2026-10")} <= small


def test_the_compact_profile_counts_windows_and_unknown_tokens_per_split() -> None:
    """What `ftpipe monitor` compares served rows with; left out where tokenize's columns are missing."""
    f = frames()
    train = f["train"].assign(
        n_windows=[1 + i % 3 for i in range(60)], truncated=[i % 10 == 0 for i in range(60)]
    )
    train["n_unk"] = [1 if i < 6 else 0 for i in range(60)]
    f = {**f, "train": train}
    for name in ("validation", "test"):
        f[name] = f[name].assign(n_windows=1)
    compact = compact_profile(f, CLASSES, ValidateParams())
    assert compact.windows_hist is not None and compact.unk_share is not None
    assert compact.windows_hist["train"] == {"1": 18, "2": 18, "3": 18, "cut": 6}  # i % 10 == 0: cut
    assert compact.windows_hist["test"] == {"1": 15}
    assert (
        compact.unk_share["train"] == round(6 / int(train["n_tokens"].sum()), 6)
        and compact.unk_share["test"] == 0
    )
    assert "windows_hist" not in compact_profile(frames(), CLASSES, ValidateParams()).dump()  # no n_windows
