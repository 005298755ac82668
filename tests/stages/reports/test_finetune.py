"""The finetune report model: the committed report goes through it without a byte changed, a whole epoch
stays an int, and a report missing a key the readers use is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from stages.core.io import write_json
from stages.reports.finetune import FinetuneReport

REPORT = Path(__file__).resolve().parents[2] / "fixtures" / "reports" / "finetune.json"


def test_the_committed_report_round_trips_byte_for_byte(tmp_path: Path) -> None:
    data = json.loads(REPORT.read_text(encoding="utf-8"))
    write_json(tmp_path / "finetune.json", FinetuneReport.model_validate(data).dump())
    assert (tmp_path / "finetune.json").read_text(encoding="utf-8") == REPORT.read_text(encoding="utf-8")


def test_epochs_keep_their_type_and_extras_are_kept() -> None:
    data = json.loads(REPORT.read_text(encoding="utf-8"))
    report = FinetuneReport.model_validate({**data, "epochs_run": 2, "best_epoch": 1.5, "new_key": [1]})
    dumped = report.dump()
    assert dumped["epochs_run"] == 2 and isinstance(dumped["epochs_run"], int)
    assert dumped["best_epoch"] == 1.5 and dumped["new_key"] == [1]
    # the fields in their declared order; an optional one the run did not write (class_weights) stays out
    assert list(dumped)[: len(data)] == [f for f in FinetuneReport.model_fields if f in data]


def test_a_report_without_its_device_is_refused() -> None:
    data = json.loads(REPORT.read_text(encoding="utf-8"))
    del data["device"]
    with pytest.raises(ValidationError, match="device"):
        FinetuneReport.model_validate(data)
