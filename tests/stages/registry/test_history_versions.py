"""The history's version rules without a store: canonical versions, old events, the missing-alias message."""

from __future__ import annotations

import json

import pytest

from stages.registry.history import (
    canonical_version,
    history_from_tags,
    make_event,
    missing_alias_message,
    rollback_target,
)
from stages.registry.tracking import RegistryError


@pytest.mark.parametrize(
    ("typed", "version"),
    [("1", "1"), ("01", "1"), (" 1", "1"), ("+1", "1"), ("1.0", "1"), ("1.", "1"), ("010", "10"), (7, "7")],
)
def test_canonical_version_reads_what_mlflow_reads(typed: str | int, version: str) -> None:
    assert canonical_version(typed) == version


@pytest.mark.parametrize("typed", ["1.5", "-1", "0", "00", "0.0", "abc", "", "1_0", "1e0", "v1", "1 2"])
def test_canonical_version_refuses_what_names_no_version(typed: str) -> None:
    with pytest.raises(RegistryError) as info:
        canonical_version(typed)
    assert str(info.value) == (
        f"`{typed}` is not a model version: a version is a whole number from 1 up, such as 3 "
        "(`ftpipe history --versions` lists them)."
    )


def test_events_are_written_and_read_canonical() -> None:
    assert (make_event("promote", "03", " 1", "x")["from"], make_event("promote", None, "+1", "x")["to"]) == (
        "3",
        "1",
    )
    old = {"at": "t", "who": "ana", "reason": "x"}
    tags = {
        "ftpipe.history.000001": json.dumps({**old, "action": "gate", "from": None, "to": "3"}),
        "ftpipe.history.000002": json.dumps({**old, "action": "promote", "from": "3", "to": "01"}),
        "ftpipe.history.000003": json.dumps({**old, "action": "promote", "from": "01", "to": "oops"}),
    }
    events = history_from_tags(tags)
    assert [(e["from"], e["to"]) for e in events] == [(None, "3"), ("3", "1"), ("1", "oops")]
    assert rollback_target(events[:2], "1") == "3"  # before: "01", which is v1 itself


def test_missing_alias_message_names_versions_and_aliases() -> None:
    assert missing_alias_message("ftpipe-bbc-news", "champion", {"1": ["challenger"], "2": []}) == (
        "no `champion` alias on ftpipe-bbc-news; versions: 1 (challenger), 2; aliases: challenger -> 1. "
        "Promote one with `ftpipe promote 1 --reason ...`."
    )
    # no challenger: the newest version is the suggestion; versions in numeric order
    assert missing_alias_message("m", "champion", {"10": [], "9": []}).endswith(
        "versions: 9, 10; aliases: none. Promote one with `ftpipe promote 10 --reason ...`."
    )
    assert missing_alias_message("m", "challenger", {"1": ["champion"]}) == (
        "no `challenger` alias on m; versions: 1 (champion); aliases: champion -> 1. Name a version "
        "number instead (e.g. 1), or one of the aliases there are."
    )
    assert missing_alias_message("m", "champion", {}) == (
        "no `champion` alias on m: it has no versions yet. Run the pipeline (`ftpipe run`) to register one."
    )


@pytest.mark.parametrize("typed", ["99999999999999999999", "2147483648", "1" + "0" * 400])
def test_a_version_beyond_any_store_is_refused_as_input(typed: str) -> None:
    """Issue #34, item 4: SQLite and PostgreSQL keep a version in an integer column (PostgreSQL's holds
    2,147,483,647): a larger one is a typing mistake, not a question for the store."""
    with pytest.raises(RegistryError, match=r"larger than any model version .*2147483647") as info:
        canonical_version(typed)
    assert len(str(info.value)) < 300


def test_the_largest_storable_version_is_a_version() -> None:
    assert canonical_version("2147483647") == "2147483647"
