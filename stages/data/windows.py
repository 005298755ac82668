"""Windows: a text the model reads as one or more token windows, and its prediction as their mean.

The tokenize stage writes `windows` (each window's token ids, special tokens included) and, for models
with token type ids, `window_type_ids`. A split without them (a hand-built dataset, or data tokenized
before windows existed) is read as one window per row from `input_ids`. finetune trains on one window
per text per epoch, drawn by `WindowSampler`; validation, evaluate and the served model average the class
probabilities of all of a text's windows (`mean_by_row`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

import numpy as np

if TYPE_CHECKING:  # datasets is imported by the stages that read the splits
    from datasets import Dataset

# one window as a model input, with its label: input_ids, attention_mask (token_type_ids) and labels
Item: TypeAlias = dict[str, list[int] | list[float] | int]  # labels: a class id, or a 0/1 row of floats


def row_windows(ds: Dataset, input_names: list[str]) -> list[list[dict[str, list[int]]]]:
    """Per row of `ds`, its windows as model inputs (only the keys in `input_names`)."""
    want_types = "token_type_ids" in input_names
    want_mask = "attention_mask" in input_names
    if "windows" in ds.column_names:
        ids = ds["windows"]
        types = ds["window_type_ids"] if want_types and "window_type_ids" in ds.column_names else None
    else:
        ids = [[r] for r in ds["input_ids"]]
        types = (
            [[t] for t in ds["token_type_ids"]]
            if want_types and "token_type_ids" in ds.column_names
            else None
        )
    out = []
    for r, wins in enumerate(ids):
        if not wins:
            raise ValueError(f"row {r} has no token window; rerun the tokenize stage")
        row = []
        for k, w in enumerate(wins):
            item = {"input_ids": list(w)}
            if want_mask:
                item["attention_mask"] = [1] * len(w)
            if want_types:
                item["token_type_ids"] = list(types[r][k]) if types is not None else [0] * len(w)
            row.append(item)
        out.append(row)
    return out


def flatten(rows: list[list[dict[str, list[int]]]]) -> tuple[list[dict[str, list[int]]], np.ndarray]:
    """Every window of every row, in order, and the index of the row each came from."""
    flat = [w for row in rows for w in row]
    owner = np.repeat(np.arange(len(rows)), [len(row) for row in rows])
    return flat, owner


def mean_by_row(window_probs: np.ndarray, owner: np.ndarray, n_rows: int) -> np.ndarray:
    """Average the windows' class probabilities per row (a row's prediction)."""
    sums = np.zeros((n_rows, window_probs.shape[1]), dtype=np.float64)
    np.add.at(sums, owner, window_probs)
    counts = np.bincount(owner, minlength=n_rows).astype(np.float64)
    if (counts == 0).any():
        raise ValueError(f"{int((counts == 0).sum())} row(s) have no window prediction")
    return sums / counts[:, None]


def pick_window(n_windows: int, seed: int, epoch: int, row: int) -> int:
    """The window row `row` trains on in `epoch`: uniform, and the same for the same (seed, epoch, row)."""
    if n_windows == 1:
        return 0
    return int(np.random.default_rng([seed, epoch, row]).integers(n_windows))


class WindowSampler:
    """A map-style training dataset: one window per text, redrawn each epoch (set by `set_epoch`).

    Every process and every resumed run draws the same windows, since the draw depends only on the
    seed, the epoch and the row. Items are model inputs plus `labels`.
    """

    def __init__(
        self, rows: list[list[dict[str, list[int]]]], labels: list[int] | list[list[float]], seed: int
    ) -> None:
        if len(rows) != len(labels):
            raise ValueError(f"{len(rows)} rows but {len(labels)} labels")
        self.rows, self.labels, self.seed, self.epoch = rows, labels[:], seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> Item:
        row = self.rows[i]
        item: Item = dict(row[pick_window(len(row), self.seed, self.epoch, i)])
        item["labels"] = self.labels[i]
        return item


class WindowList:
    """A map-style dataset over fixed items (every window of every validation text, with its label)."""

    def __init__(self, items: list[Item]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Item:
        return self.items[i]
