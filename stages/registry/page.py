"""register's page: reports/report.html from the run's reports, written atomically and logged with the version.

    path = write_run_page("reports/report.html", report, "reports/metrics.json", "reports/predictions.csv",
                          "reports/drift.json", labels)
    log_run_page(params, tracking_uri(), report.run_id, path, log)   # the run's artifact `report.html`

The page itself is stages/reports/run_page.py (pure); this module reads the files it needs and puts the
page where people find it: in the workspace (a DVC output) and beside the model version in MLflow (an
artifact of the version's registration run, which the model card names). Written for an `unchanged`
version too, so the page always shows the registry as this run left it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from pydantic import ValidationError

from stages.config.register import RegisterParams
from stages.core.csvsafe import read_csv
from stages.core.io import atomic_file, read_json
from stages.core.label_sets import MULTI_LABEL_TASK
from stages.core.redact import mask_secrets
from stages.registry import tags as registry_tags
from stages.registry.client import Registry
from stages.registry.inputs import read_metrics
from stages.reports.drift import DriftReport
from stages.reports.register import RegistryReport
from stages.reports.run_page import Prediction, RunPage, render_run_page


def read_predictions(path: str | Path, prob_labels: Sequence[str] = ()) -> list[Prediction]:
    """reports/predictions.csv as (label, pred, score) rows; evaluate's escaped cells read back as written.
    With `prob_labels` (a label-set run) each row also carries its `prob_<label>` columns in that order,
    when the file has all of them."""
    df = read_csv(path, dtype={"id": str, "label": str, "pred": str})
    scores = df["score"] if "score" in df.columns else [float("nan")] * len(df)
    columns = [f"prob_{name}" for name in prob_labels]
    if columns and set(columns) <= set(df.columns):
        probs = [tuple(float(v) for v in row) for row in df[columns].itertuples(index=False)]
        return [
            Prediction(str(label), str(pred), float(score), row)
            for label, pred, score, row in zip(df["label"], df["pred"], scores, probs, strict=True)
        ]
    return [
        Prediction(str(label), str(pred), float(score))
        for label, pred, score in zip(df["label"], df["pred"], scores, strict=True)
    ]


def read_drift(path: str | Path | None) -> DriftReport | None:
    """The drift stage's report, or None when there is none (a run without the drift stage) or it is not one."""
    if path is None or not Path(path).is_file():
        return None
    try:
        return DriftReport.model_validate(read_json(path))
    except (ValueError, ValidationError):
        return None


def write_run_page(
    path: str | Path,
    report: RegistryReport,
    metrics_path: str | Path,
    predictions_path: str | Path,
    drift_path: str | Path | None,
    labels: list[str],
    now: datetime | None = None,
) -> Path:
    """Render the run's page from its reports and write it atomically at `path`; the path."""
    metrics = read_metrics(metrics_path)
    page = RunPage(
        registry=report,
        metrics=metrics,
        predictions=read_predictions(predictions_path, labels if metrics.task == MULTI_LABEL_TASK else ()),
        labels=labels,
        drift=read_drift(drift_path),
        generated=now or datetime.now(timezone.utc),
    )
    text = mask_secrets(render_run_page(page))
    with atomic_file(path, needed=len(text.encode())) as fh:
        fh.write(text)
    return Path(path)


def log_run_page(p: RegisterParams, uri: str, run_id: str | None, path: Path, log: logging.Logger) -> bool:
    """Log the page as the artifact `report.html` of the version's run; False (one warning) when it could
    not be: the version is registered and gated already, and the next run logs the page again."""
    if run_id is None:
        log.warning("report page not logged: the version has no registration run")
        return False
    try:
        Registry.connect(uri, p.model_name, p.policy()).log_page(run_id, path)
    except Exception as exc:  # noqa: BLE001 - a page that is not logged fails no registration
        log.warning("report page not logged with run %s: %s", run_id, mask_secrets(str(exc)))
        return False
    log.info("report page %s logged with run %s as %s", path, run_id, registry_tags.REPORT_PAGE_ARTIFACT)
    return True
