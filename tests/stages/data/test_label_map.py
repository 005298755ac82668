"""labels.json: one writer and one reader; the file as label wrote it before, and one clear error for a bad map."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stages.data.label_map import LabelMapError, read_label_names, write_label_map

NAMES = [f"class-{i}" for i in range(12)]  # ids 10 and 11 sort before 2 as strings: the names must not


def test_the_map_round_trips_and_keeps_its_bytes(tmp_path: Path) -> None:
    write_label_map(tmp_path / "labels.json", NAMES)
    before = json.dumps({str(i): n for i, n in enumerate(NAMES)}, indent=2, sort_keys=True) + "\n"
    assert (tmp_path / "labels.json").read_text(encoding="utf-8") == before  # what label wrote before
    assert read_label_names(tmp_path / "labels.json") == NAMES


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"0": "a", "2": "b"}', 'are not the class ids "0" .. "1"'),
        ('{"1": "a", "2": "b"}', 'are not the class ids "0" .. "1"'),
        ('{"0": "a", "01": "b"}', 'are not the class ids "0" .. "1"'),
        ('{"0": "a"}', "1 class(es); classification needs at least two"),
        ('{"0": "a", "1": ""}', "non-empty strings, not ['']"),
        ('{"0": "a", "1": 7}', "non-empty strings, not [7]"),
        ('{"0": "a", "1": "a"}', "class names ['a'] appear more than once"),
        ('["a", "b"]', "a JSON list, not an object"),
        ("{not json", "not JSON"),
    ],
)
def test_a_bad_map_is_one_error_naming_the_file_and_the_fix(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "labels.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(LabelMapError) as err:
        read_label_names(path)
    message = str(err.value)
    assert message.startswith(f"{path}: not a label map (") and problem in message
    assert "dvc repro label" in message and "\n" not in message
