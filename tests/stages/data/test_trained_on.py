"""The trained-on record: what it keeps, its stable bytes, and how it recognises a row."""

from __future__ import annotations

import gzip
import json

import pytest

from stages.data.trained_on import TrainedOn


def test_trained_on_round_trips_as_stable_sorted_gzip_json() -> None:
    rec = TrainedOn.from_splits({"train": (["b", "a"], ["g2", "g1"]), "validation": (["c"], [None])})
    assert rec.rows == {"train": 2, "validation": 1} and rec.groups == {"g1", "g2"}
    data = rec.to_bytes()
    assert data == rec.to_bytes()  # no timestamp in the gzip header: the same record, the same bytes
    doc = json.loads(gzip.decompress(data))
    assert doc["ids"] == ["a", "b", "c"] and doc["groups"] == ["g1", "g2"] and doc["format"] == 1
    assert TrainedOn.from_bytes(data) == rec
    assert rec.summary() == "train 2, validation 1; 3 ids, 2 groups"
    with pytest.raises(ValueError, match="format 9"):
        TrainedOn.from_bytes(gzip.compress(json.dumps({"format": 9}).encode()))


def test_a_row_is_seen_by_its_id_or_its_group() -> None:
    rec = TrainedOn.from_splits({"train": (["a"], ["g1"])})
    assert rec.seen(["a", "x", "y", "z"], ["other", "g1", None, ""]) == [True, True, False, False]
