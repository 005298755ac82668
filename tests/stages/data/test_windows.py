"""windows: reading a split as windows, averaging their predictions, drawing one per epoch."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import Dataset

from stages.data.windows import WindowSampler, flatten, mean_by_row, pick_window, row_windows

NAMES = ["input_ids", "token_type_ids", "attention_mask"]


def test_windows_column_is_read_with_masks_and_type_ids() -> None:
    ds = Dataset.from_dict(
        {
            "windows": [[[1, 5, 2], [1, 6, 7, 2]], [[1, 8, 2]]],
            "window_type_ids": [[[0, 0, 0], [0, 0, 0, 0]], [[0, 0, 0]]],
        }
    )
    rows = row_windows(ds, NAMES)
    assert [len(r) for r in rows] == [2, 1]
    assert rows[0][1] == {
        "input_ids": [1, 6, 7, 2],
        "attention_mask": [1, 1, 1, 1],
        "token_type_ids": [0, 0, 0, 0],
    }
    flat, owner = flatten(rows)
    assert len(flat) == 3 and owner.tolist() == [0, 0, 1]


def test_a_split_without_windows_is_one_window_per_row() -> None:
    ds = Dataset.from_dict({"input_ids": [[1, 5, 2]], "attention_mask": [[1, 1, 1]]})
    assert row_windows(ds, ["input_ids", "attention_mask"]) == [
        [{"input_ids": [1, 5, 2], "attention_mask": [1, 1, 1]}]
    ]


def test_mean_by_row_averages_each_texts_windows() -> None:
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8]])
    out = mean_by_row(probs, np.array([0, 0, 1]), 2)
    np.testing.assert_allclose(out, [[0.6, 0.4], [0.2, 0.8]])
    with pytest.raises(ValueError, match="1 row"):
        mean_by_row(probs, np.array([0, 0, 0]), 2)


def test_window_draw_is_seeded_per_epoch_and_row() -> None:
    assert pick_window(1, 42, 3, 7) == 0
    draws = [pick_window(4, 42, epoch, 7) for epoch in range(40)]
    assert draws == [pick_window(4, 42, epoch, 7) for epoch in range(40)]  # same seed: same windows
    assert set(draws) == {0, 1, 2, 3}  # every window gets its turn
    assert draws != [pick_window(4, 43, epoch, 7) for epoch in range(40)]


def test_window_sampler_redraws_on_set_epoch() -> None:
    rows = [[{"input_ids": [1, k, 2]} for k in range(10, 14)] for _ in range(8)]
    ds = WindowSampler(rows, [0] * 8, seed=0)
    first = [ds[i]["input_ids"][1] for i in range(8)]
    assert ds[0]["labels"] == 0 and first == [ds[i]["input_ids"][1] for i in range(8)]
    ds.set_epoch(1)
    assert [ds[i]["input_ids"][1] for i in range(8)] != first
