"""The train/validation splits finetune trains on, checked against the class names of labels.json.

A split's `label` is a class id per text, or under `label.task: multi_label` a list of class ids
(`is_label_sets`), which finetune trains with a multi-label head.

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
    feature = dd["train"].features["label"]
    have = list((feature.feature if is_label_sets(dd["train"]) else feature).names)
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


def is_label_sets(split: Dataset) -> bool:
    """Whether a split holds a set of labels per text (`label.task: multi_label`: a list of class ids)."""
    return isinstance(split.features["label"], List)
