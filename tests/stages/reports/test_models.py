"""The report models (stages/reports/): the committed reports parse, and a report goes through its model
without a byte changed, so the stages that now write `Model.model_validate(report).dump()` write what
they wrote before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from flows import summary
from stages.core.io import write_json
from stages.reports.base import ReportModel
from stages.reports.clean import CleanReport
from stages.reports.drift import DriftReport
from stages.reports.evaluate import MetricsReport
from stages.reports.label import LabelReport
from stages.reports.register import RegistryReport
from stages.reports.validate import DataProfileReport

REPO = Path(__file__).resolve().parents[3]
FIXTURE_REPORTS = REPO / "tests" / "fixtures" / "reports"
# every report the summary reads, by the file name it looks for
MODELS: dict[str, type[ReportModel]] = {
    summary.METRICS_REPORT: MetricsReport,
    summary.REGISTRY_REPORT: RegistryReport,
    summary.PROFILE_REPORT: DataProfileReport,
    summary.LABEL_REPORT: LabelReport,
    summary.CLEAN_REPORT: CleanReport,
    summary.DRIFT_REPORT: DriftReport,
}
# the default run's reports as the stages wrote them (tests/fixtures/reports; registry.json is this
# machine's registry's, not among them)
COMMITTED = sorted(n for n in MODELS if n != summary.REGISTRY_REPORT and (FIXTURE_REPORTS / n).is_file())


def through_model(model: type[ReportModel], data: dict, tmp_path: Path) -> str:
    """`data` written as the stages write it, after a round trip through `model`."""
    write_json(tmp_path / "out.json", model.model_validate(data).dump())
    return (tmp_path / "out.json").read_text(encoding="utf-8")


def test_the_committed_reports_are_there() -> None:
    assert {"metrics.json", "data_profile.json", "label.json", "clean.json"} <= set(COMMITTED)


@pytest.mark.parametrize("name", COMMITTED)
def test_each_committed_report_parses_and_keeps_every_byte(name: str, tmp_path: Path) -> None:
    text = (FIXTURE_REPORTS / name).read_text(encoding="utf-8")
    MODELS[name].model_validate_json(text)
    assert through_model(MODELS[name], json.loads(text), tmp_path) == text


def test_a_first_run_label_report_gains_no_movement_keys(tmp_path: Path) -> None:
    """With no previous run, label writes only `previous_run: false`: the optional fields stay out."""
    report = {"movement": {"previous_run": False}, "rows": {"train": 7}}
    assert json.loads(through_model(LabelReport, report, tmp_path)) == report
    assert LabelReport.model_validate(report).movement.new is None


def test_registry_and_drift_reports_keep_their_nulls_and_extras(tmp_path: Path) -> None:
    registry = {
        "action": "unchanged",
        "name": "tiny",
        "version": "3",
        "run_id": None,
        "aliases": [],
        "champion": None,
        "promoted": False,
        "gate": None,
        "timings": {"total_s": 1.5},
    }
    drift = {"outcome": "skip", "reason": "no champion", "champion": None, "domain_auc": None, "notes": []}
    assert json.loads(through_model(RegistryReport, registry, tmp_path)) == registry
    assert json.loads(through_model(DriftReport, drift, tmp_path)) == drift


def test_a_renamed_key_is_refused_where_the_report_is_written() -> None:
    """The failure the models exist for: a stage renames a key the summary reads."""
    with pytest.raises(ValidationError, match="movement"):
        LabelReport.model_validate({"moves": {"previous_run": False}})
    with pytest.raises(ValidationError, match="length_warnings"):
        CleanReport.model_validate({"warnings": []})
