"""What a model trained on: the ids and group keys of its train and validation rows (`TrainedOn`).

    record = TrainedOn.from_splits({"train": (ids, groups), "validation": (ids, groups)})
    record.seen(test_ids, test_groups)   # per row: did the model train or validate on it?

The register stage stores it with each version (a small gzip'd JSON artifact, `to_bytes`), so a later
candidate is compared with that version only on rows it never saw (`stages.gate.checks.unseen_rows`),
and drift leaves out the texts it trained on (`stages.data.drift.new_sample`). Pure; no imports of ftpipe.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class TrainedOn:
    """The ids and group keys of the rows a model trained or validated on (train + validation splits)."""

    ids: frozenset[str]
    groups: frozenset[str]
    rows: dict[str, int]  # rows per split, e.g. {"train": 1200, "validation": 150}

    FORMAT = 1

    @classmethod
    def from_splits(cls, splits: Mapping[str, tuple[Sequence[str], Sequence[str | None]]]) -> TrainedOn:
        """From `{split: (ids, groups)}` of the train and validation splits (a missing group is skipped)."""
        ids = {str(i) for split_ids, _ in splits.values() for i in split_ids}
        groups = {str(g) for _, split_groups in splits.values() for g in split_groups if g}
        return cls(frozenset(ids), frozenset(groups), {k: len(v[0]) for k, v in splits.items()})

    def to_bytes(self) -> bytes:
        """Gzip'd JSON with sorted lists: the same record gives the same bytes (mtime 0)."""
        doc = {
            "format": self.FORMAT,
            "rows": self.rows,
            "ids": sorted(self.ids),
            "groups": sorted(self.groups),
        }
        return gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), mtime=0)

    @classmethod
    def from_bytes(cls, data: bytes) -> TrainedOn:
        doc = json.loads(gzip.decompress(data))
        if doc.get("format") != cls.FORMAT:
            raise ValueError(
                f"trained-on record format {doc.get('format')!r}; this ftpipe reads {cls.FORMAT}"
            )
        return cls(frozenset(doc["ids"]), frozenset(doc["groups"]), dict(doc.get("rows", {})))

    def seen(self, ids: Iterable[str], groups: Iterable[str | None]) -> list[bool]:
        """Per row: was its id or its group key in this record?"""
        return [
            str(i) in self.ids or (bool(g) and str(g) in self.groups)
            for i, g in zip(ids, groups, strict=True)
        ]

    def summary(self) -> str:
        rows = ", ".join(f"{k} {v}" for k, v in self.rows.items())
        return f"{rows}; {len(self.ids)} ids, {len(self.groups)} groups"
