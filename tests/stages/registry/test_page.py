"""register's page (stages/registry/page.py): reports/report.html written from a registered version's
reports, also when the version was registered already, logged as the run's `report.html`, named by the
card; a store that refuses the page fails nothing."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from stages.config.register import RegisterParams
from stages.registry import tags as registry_tags
from stages.registry.page import log_run_page, read_drift, read_predictions, write_run_page
from stages.reports.register import RegistryReport
from tests.conftest import FIXTURE_REPORTS
from tests.factories import new_store, register_candidate
from tests.registry_support import Workspace

TRUNC = {"max_length": 64, "truncation": "head", "head_fraction": 0.25, "windows": 1}


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("page")
    ws = Workspace(root / "ws")
    uri = new_store(root)
    first, cand = register_candidate(uri, ws, "paged", TRUNC)
    again, _ = register_candidate(uri, ws, "paged", TRUNC)
    return {
        "uri": uri,
        "paths": ws.candidate("constant", "constant"),
        "labels": cand.labels,
        "root": root,
        "reports": [first, again],
    }


def _page(registered: dict[str, Any], report: dict[str, Any], out: Path) -> Path:
    paths = registered["paths"]
    masked = RegistryReport.model_validate(report)
    drift = FIXTURE_REPORTS / "drift.json"
    return write_run_page(out, masked, paths["metrics"], paths["predictions"], drift, registered["labels"])


def test_the_page_is_written_and_logged_with_the_version(
    registered: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = registered["reports"][0]
    page = _page(registered, first, tmp_path / "reports" / "report.html")
    text = page.read_text(encoding="utf-8")
    assert f"paged version {first['version']}" in text and "data-chart='calibration'" in text
    assert not list(page.parent.glob(".report.html.tmp-*"))  # atomic: no temporary left
    p = RegisterParams(model_name="paged", retries=0)
    with caplog.at_level(logging.INFO):
        assert log_run_page(p, registered["uri"], first["run_id"], page, logging.getLogger("t"))
    client = MlflowClient(registered["uri"], registry_uri=registered["uri"])
    got = client.download_artifacts(first["run_id"], registry_tags.REPORT_PAGE_ARTIFACT, str(tmp_path))
    assert Path(got).read_text(encoding="utf-8") == text
    card = client.get_model_version("paged", first["version"]).description or ""
    assert f"runs:/{first['run_id']}/{registry_tags.REPORT_PAGE_ARTIFACT}" in card


def test_an_unchanged_version_gets_its_page_too(registered: dict[str, Any], tmp_path: Path) -> None:
    again = registered["reports"][1]
    assert again["action"] == "unchanged"
    text = _page(registered, again, tmp_path / "report.html").read_text(encoding="utf-8")
    assert "(unchanged)" in text and "data-chart='confusion'" in text


def test_a_page_that_cannot_be_logged_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    page = tmp_path / "report.html"
    page.write_text("<html></html>")
    p = RegisterParams(model_name="nowhere", retries=0, timeout_s=2)
    with caplog.at_level(logging.WARNING):
        assert not log_run_page(p, "http://127.0.0.1:9", "r1", page, logging.getLogger("t"))
        assert not log_run_page(p, "http://127.0.0.1:9", None, page, logging.getLogger("t"))
    assert [r.getMessage()[:24] for r in caplog.records] == [
        "report page not logged w",
        "report page not logged: ",
    ]


def test_the_readers_take_evaluates_files_and_a_missing_drift_report(
    registered: dict[str, Any], tmp_path: Path
) -> None:
    preds = read_predictions(registered["paths"]["predictions"])
    assert preds and all(0.0 <= p.score <= 1.0 for p in preds)
    assert read_drift(tmp_path / "absent.json") is None and read_drift(None) is None
    (tmp_path / "other.json").write_text('{"outcome": 1}')
    assert read_drift(tmp_path / "other.json") is None
    assert read_drift(FIXTURE_REPORTS / "drift.json") is not None
