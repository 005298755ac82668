"""data/processed/profile.json through its model: the bytes validate writes and MLflow logs are unchanged, and
a stored profile that cannot be compared says why (drift turns that into a note, never an exception)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stages.core.io import write_json
from stages.reports.profile import DataProfile, as_profile, profile_problem
from tests.conftest import make_corpus
from tests.registry_support import make_profile
from tests.stages.data.test_drift import split


@pytest.fixture(scope="module")
def profile() -> dict:
    return make_profile(split(make_corpus(n_per_class=10), "a-"))


def test_the_profile_keeps_its_bytes_sorted_and_in_file_order(profile: dict, tmp_path: Path) -> None:
    write_json(tmp_path / "before.json", profile)
    write_json(tmp_path / "after.json", DataProfile.model_validate(profile).dump())
    assert (tmp_path / "after.json").read_bytes() == (tmp_path / "before.json").read_bytes()
    # register logs it with MLflow's log_dict (json.dump, keys unsorted) after reading it from its file
    from_file = json.loads((tmp_path / "before.json").read_text(encoding="utf-8"))
    dumped = DataProfile.model_validate(from_file).dump()
    assert json.dumps(dumped, indent=2) == json.dumps(from_file, indent=2)


def test_a_profile_that_cannot_be_compared_says_why(profile: dict) -> None:
    assert profile_problem(profile) is None and isinstance(as_profile(profile), DataProfile)
    assert profile_problem([]) == "not a profile (a list)"
    assert profile_problem({"format": 2}) == "profile format 2, this ftpipe reads 1"
    assert (
        profile_problem({"format": 1, "sample": []}) == "profile lacks class_counts, length_bins, length_hist"
    )
    malformed = profile_problem({**profile, "sample": [{"text": "t"}]})
    assert malformed is not None and malformed.startswith(
        "profile is malformed (sample.0.group: Field required"
    )
