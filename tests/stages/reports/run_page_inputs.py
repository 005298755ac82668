"""The run page's inputs from the default run's reports (tests/fixtures/reports), for the page's tests.

metrics.json, confusion.json and drift.json are the default run's; registry.json is this machine's and
not a fixture, so the registry report is built here (a second version gated against champion 1), and
predictions.csv is rebuilt from confusion.json with scores that make a plausible reliability curve.
`hostile=True` renames one class and the model to a `<script>`, as user data could.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from stages.core.io import read_json
from stages.reports.drift import DriftReport
from stages.reports.evaluate import MetricsReport
from stages.reports.register import RegistryReport
from stages.reports.run_page import Prediction, RunPage

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "reports"
HOSTILE = "<script>alert('x')</script>"


def registry_report(name: str, labels: list[str], action: str = "registered") -> dict[str, Any]:
    """registry.json of version 2, promoted over champion 1, with the gate's comparison and drift."""
    per_class = {
        c: {
            "rows": 20,
            "candidate_recall": 0.95,
            "champion_recall": 0.9,
            "candidate_f1": 0.96,
            "champion_f1": 0.91,
        }
        for c in labels
    }
    checks = [
        {"name": "floor", "outcome": "skip", "reason": "no floor set", "value": None, "threshold": None},
        {"name": "baseline", "outcome": "pass", "reason": "macro_f1 0.985 >= 0.976 - 0.01", "value": 0.985},
        {"name": "drift", "outcome": "warn", "reason": f"label JS 0.12 for {labels[0]}", "value": 0.12},
    ]
    gate = {
        "decision": "promote",
        "promote": True,
        "policy": "non_inferiority",
        "champion_before": "1",
        "checks": checks,
        "comparison": {
            "rows": 100,
            "candidate_primary": 0.96,
            "champion_primary": 0.91,
            "candidate_errors": 4,
            "champion_errors": 9,
            "mcnemar_p": 0.04,
            "per_class": per_class,
        },
        "drift": {"label_js": 0.12, "length_js": 0.05, "domain_auc": 0.61, "notes": []},
    }
    return {
        "action": action,
        "name": name,
        "version": "2",
        "run_id": "abc123",
        "aliases": ["champion", "challenger"],
        "champion": "2",
        "promoted": True,
        "gate": gate,
    }


def predictions(labels: list[str], rename: dict[str, str]) -> list[Prediction]:
    """confusion.json's rows, each with a score: higher for right answers, spread over the bins."""
    rows = read_json(FIXTURES / "confusion.json")
    out = []
    for i, r in enumerate(rows):
        right = r["actual"] == r["predicted"]
        score = 0.55 + 0.44 * ((i * 37) % 100) / 100 if right else 0.35 + 0.3 * ((i * 13) % 100) / 100
        out.append(
            Prediction(
                rename.get(r["actual"], r["actual"]), rename.get(r["predicted"], r["predicted"]), score
            )
        )
    return out


def run_page(hostile: bool = False, action: str = "registered") -> RunPage:
    """The page's inputs; `hostile`: the class `business` and the model are named `<script>...`."""
    metrics = read_json(FIXTURES / "metrics.json")
    labels = list(metrics["model"]["per_class"])
    rename = {"business": HOSTILE} if hostile else {}
    for part in ("model", "baseline"):
        metrics[part]["per_class"] = {rename.get(k, k): v for k, v in metrics[part]["per_class"].items()}
    labels = [rename.get(c, c) for c in labels]
    name = f"news {HOSTILE}" if hostile else "ftpipe-bbc-news"
    return RunPage(
        registry=RegistryReport.model_validate(registry_report(name, labels, action)),
        metrics=MetricsReport.model_validate(metrics),
        predictions=predictions(labels, rename),
        labels=labels,
        drift=DriftReport.model_validate(read_json(FIXTURES / "drift.json")),
        generated=datetime(2025, 6, 2, 3, 0, tzinfo=timezone.utc),
    )
