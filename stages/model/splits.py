"""The train/validation splits finetune trains on, checked against the class names of labels.json.

names = read_label_names(Path("data/processed/labels.json"))      # stages/data/label_map.py
train, val = load_splits(Path("data/processed/splits"), names, max_train_samples=None, seed=42)
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

from datasets import Dataset, DatasetDict, List, load_from_disk

from stages.model.trainer import FinetuneError


def load_splits(
    splits_dir: Path, names: list[str], max_train_samples: int | None, seed: int
) -> tuple[Dataset, Dataset]:
    """The train and validation splits, checked against labels.json; train optionally cut to a seeded sample."""
    dd = cast(DatasetDict, load_from_disk(str(splits_dir)))  # the label stage writes a DatasetDict
    missing = {"train", "validation"} - set(dd)
    if missing:
        raise FinetuneError(f"{splits_dir}: split(s) {sorted(missing)} missing; rerun the label stage.")
    refuse_label_sets(dd["train"], splits_dir)
    have = list(dd["train"].features["label"].names)
    if have != names:
        raise FinetuneError(
            f"{splits_dir}: label names {have} differ from labels.json {names}; the two come from different "
            "label runs. Rerun `dvc repro label`."
        )
    train, val = dd["train"], dd["validation"]
    if max_train_samples is not None and max_train_samples < len(train):
        # in memory: datasets would otherwise write its index cache into label's DVC output (data/processed)
        train = train.shuffle(seed=seed, keep_in_memory=True).select(
            range(max_train_samples), keep_in_memory=True
        )
    return train, val


def refuse_label_sets(train: Dataset, splits_dir: Path) -> None:
    """Label sets (label.task multi_label) need a multi-label head, loss and metrics, which are not built:
    stop before any training rather than train a single-label model on them."""
    if isinstance(train.features["label"], List):
        raise FinetuneError(
            f"label.task multi_label: the model side (finetune, evaluate, register) is not built yet; "
            f"{splits_dir} holds a set of labels per text (a list of class ids), and a single-label head "
            "trained on it would be wrong, so nothing was trained. The data stages (ingest to drift) "
            "handle label sets: run `dvc repro drift` to profile and check them, or set label.task to "
            "single_label to train on one label per text (issue 31 tracks the multi-label model)."
        )
