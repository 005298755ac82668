"""The files each stage reads and writes: one table, the defaults of every stage's path arguments.

    python -m stages.clean            # the same as dvc.yaml's `python -m stages.clean --raw data/raw ...`

dvc.yaml passes these same paths on each stage's command line and declares them as the stage's deps and
outs; tests/stages/test_wiring.py fails when a command's arguments differ from this table or name a path
the stage does not declare, so a stage run by hand reads and writes what DVC tracks. A key `confusion_png`
is the argument `--confusion-png`; a list takes any number of paths.
"""

from __future__ import annotations

import argparse

PATHS: dict[str, dict[str, str | list[str]]] = {
    "check": {"report": "reports/check.json"},
    "ingest": {"out": "data/raw", "report": "reports/ingest.json"},
    "clean": {"raw": "data/raw", "out": "data/interim", "report": "reports/clean.json"},
    "tokenize": {
        "clean": "data/interim",
        "out": "data/processed/tokenized",
        "report": "reports/tokenize.json",
    },
    "label": {
        "tokenized": "data/processed/tokenized",
        "out": "data/processed/splits",
        "labels": "data/processed/labels.json",
        "quarantine": "reports/label_quarantine.jsonl",
        "ledger": "data/processed/split_ledger.parquet",
        "report": "reports/label.json",
    },
    "validate": {
        "splits": "data/processed/splits",
        "labels": "data/processed/labels.json",
        "profile": "data/processed/profile.json",
        "report": "reports/data_profile.json",
    },
    "drift": {"profile": "data/processed/profile.json", "report": "reports/drift.json"},
    "finetune": {
        "splits": "data/processed/splits",
        "labels": "data/processed/labels.json",
        "out": "models/model",
        "checkpoints": "checkpoints/finetune",  # resume state, not a DVC output
        "report": "reports/finetune.json",
        "history": "reports/finetune_history.json",
        "plot": "reports/finetune_curves.png",
    },
    "evaluate": {
        "splits": "data/processed/splits",
        "labels": "data/processed/labels.json",
        "model": "models/model",
        "metrics": "reports/metrics.json",
        "headline": "reports/headline.json",
        "predictions": "reports/predictions.csv",
        "confusion": "reports/confusion.json",
        "confusion_png": "reports/confusion.png",
        "errors": "reports/worst_errors.csv",
    },
    "register": {
        "model": "models/model",
        "metrics": "reports/metrics.json",
        "predictions": "reports/predictions.csv",
        "splits": "data/processed/splits",
        "labels": "data/processed/labels.json",
        "profile": "data/processed/profile.json",
        "history": "reports/finetune_history.json",
        "finetune_report": "reports/finetune.json",  # device, precision and why, for the model card
        "drift": "reports/drift.json",  # the drift stage's figures, for the run's page
        "artifacts": [  # logged with the run when present
            "reports/confusion.json",
            "reports/confusion.png",
            "reports/finetune_curves.png",
            "reports/worst_errors.csv",
        ],
        "out": "reports/registry.json",
        "page": "reports/report.html",  # the run's page (stages/reports/run_page.py)
    },
}

# paths a stage's command names that are not DVC deps or outs of it: finetune's resume state, and the
# reports register logs when present (it is always_changed, so they need not be deps)
UNDECLARED = {("finetune", "checkpoints"), ("register", "artifacts")}


def add_path_args(ap: argparse.ArgumentParser, stage: str) -> None:
    """Add `--<key>` for each of the stage's paths, defaulting to the table's value."""
    for key, default in PATHS[stage].items():
        flag = "--" + key.replace("_", "-")
        if isinstance(default, list):
            ap.add_argument(flag, nargs="*", default=list(default), metavar="PATH")
        else:
            ap.add_argument(flag, default=default, metavar="PATH")


def path_argv(stage: str, **paths: str | list[str]) -> list[str]:
    """The stage's command-line path arguments, each from `paths` (by key) or the table; for callers
    that run a stage on other folders (bench/accuracy.py)."""
    unknown = set(paths) - set(PATHS[stage])
    if unknown:
        raise KeyError(
            f"stage `{stage}` has no path argument {sorted(unknown)}; it has {sorted(PATHS[stage])}"
        )
    argv: list[str] = []
    for key, default in PATHS[stage].items():
        value = paths.get(key, default)
        argv += ["--" + key.replace("_", "-"), *([value] if isinstance(value, str) else value)]
    return argv
