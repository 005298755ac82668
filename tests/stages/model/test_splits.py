"""The splits finetune reads: a seeded smoke sample is drawn in memory, never cached into label's output."""

from __future__ import annotations

from pathlib import Path

import pytest

from stages.model.splits import load_splits
from tests.conftest import build_splits


@pytest.fixture(scope="module")
def bert_data(
    tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path, corpus: list[dict]
) -> tuple[Path, Path]:
    return build_splits(tiny_bert, corpus, tmp_path_factory.mktemp("bert-data"))


def test_a_smoke_sample_leaves_labels_output_untouched(tmp_path: Path, bert_data: tuple[Path, Path]) -> None:
    """`max_train_samples` used to write datasets cache files into data/processed (label's DVC output)."""
    import shutil

    from datasets import load_from_disk

    splits = Path(shutil.copytree(bert_data[0], tmp_path / "splits"))
    before = {p.relative_to(splits): p.stat().st_mtime_ns for p in splits.rglob("*")}
    names = load_from_disk(str(splits))["train"].features["label"].names
    train, _ = load_splits(splits, names, max_train_samples=5, seed=3)
    assert {p.relative_to(splits): p.stat().st_mtime_ns for p in splits.rglob("*")} == before
    # the same rows, in the same order, as the cached shuffle gave (training numerics unchanged)
    old = load_from_disk(str(shutil.copytree(bert_data[0], tmp_path / "old")))["train"]
    assert train["id"] == old.shuffle(seed=3).select(range(5))["id"]
