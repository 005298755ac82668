"""register: log the run to MLflow, register the model version, run the promotion gate, move the aliases.

    python -m stages.register --model models/model --metrics reports/metrics.json \
        --predictions reports/predictions.csv --splits data/processed/splits \
        --labels data/processed/labels.json --profile data/processed/profile.json --out reports/registry.json \
        --drift reports/drift.json --page reports/report.html

A thin entry point: it reads the params and the inputs (stages/registry/inputs.py), runs the registration
(stages/registry/register_run.py: gather, gate, publish, verify, over stages/registry/client.py's MLflow
calls and stages/gate/checks.py's pure gate) and writes the report. Each version stores what it trained on
(ids and group keys of its train and validation rows) and the data profile; the champion is scored only
on the candidate's test rows that it never trained or validated on. docs/registry-and-gate.md has the
gate's table.

Idempotent: the model folder's hash (weights + config) is a version tag, and a model that is already
registered is not registered again (`"action": "unchanged"` in the report). The stage is
`always_changed` in dvc.yaml, so a wiped registry is filled again by the next `dvc repro`. Aliases are set
last, after the version is READY and has been loaded back and checked against the evaluated predictions,
so a half-done registration never leaves an alias on a broken version. A rerun resumes the version an
interrupted run left pending or verified (no duplicate; the gate runs again, against the champion of
now), and reconciles a champion change whose history event a killed run left as an intent. Every MLflow
call is under `register.retries` / `backoff_s` / `timeout_s`. A failure logs one masked paragraph (the
traceback too only with `-v` or FTPIPE_VERBOSE=1) and leaves the last reports/registry.json in place
(`persist: true` in dvc.yaml, so DVC does not delete it before the stage runs; written only on success).

After the report, the run's page (reports/report.html: metrics against the baseline and the champion,
confusion, per class, calibration, drift, the gate) is written, also for an `unchanged` version, and
logged as the artifact `report.html` of the version's run (stages/registry/page.py); a page that cannot
be logged is one warning, not a failed registration.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from pathlib import Path

from datasets import load_from_disk

from stages.config.params import load_section, read_params_file
from stages.config.paths import add_path_args
from stages.config.register import RegisterParams
from stages.config.tokenize import TokenizeParams
from stages.core.io import write_json
from stages.core.logs import VERBOSE_ENV, setup_logging, verbose_requested
from stages.core.notify import notify
from stages.core.redact import mask_output, mask_secrets
from stages.registry.inputs import load_candidate, read_finetune_report, read_profile, trained_on_from_splits
from stages.registry.page import log_run_page, write_run_page
from stages.registry.register_run import failure_paragraph, register
from stages.registry.tracking import tracking_uri
from stages.reports.register import RegistryReport


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    add_path_args(ap, "register")
    ap.add_argument("--lock", default="dvc.lock")
    ap.add_argument(
        "-v", "--verbose", action="store_true", help=f"on failure, the traceback too (or {VERBOSE_ENV}=1)"
    )
    args = ap.parse_args(argv)
    mask_output()  # MLflow prints and logs the tracking URI (run links, errors), password included
    log = setup_logging("register")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # bars clutter the dvc log
    try:
        _main(args, log)
    except Exception as exc:  # masked: MLflow's exception text holds the raw URI
        if args.verbose or verbose_requested():
            sys.stderr.write(mask_secrets("".join(traceback.format_exception(exc))))
        log.error("%s", failure_paragraph(exc, args.out))
        sys.exit(1)


def _main(args: argparse.Namespace, log: logging.Logger) -> None:
    p = load_section("register", RegisterParams, args.params)
    tok = load_section("tokenize", TokenizeParams, args.params)  # how the served model reads a text

    splits = load_from_disk(args.splits)
    cand = load_candidate(args.model, args.metrics, args.predictions, splits, args.labels)
    profile, profile_note = read_profile(args.profile)
    log.info("%s", profile_note)
    report = register(
        p,
        cand,
        tracking_uri(),
        params=read_params_file(args.params),
        truncation={
            "max_length": tok.max_length,
            "truncation": tok.truncation,
            "head_fraction": tok.head_fraction,
            "windows": tok.windows,
        },
        trained_on=trained_on_from_splits(splits),
        profile=profile,
        profile_note=profile_note,
        lock_path=args.lock,
        history_path=Path(args.history) if args.history else None,
        extra_artifacts=[
            Path(args.metrics),
            Path(args.predictions),
            Path(args.finetune_report),
            *map(Path, args.artifacts),
        ],
        training=read_finetune_report(args.finetune_report),
        log=log,
    )
    masked = RegistryReport.model_validate(json.loads(mask_secrets(json.dumps(report))))  # summary reads it
    write_json(args.out, masked.dump())  # nothing secret reaches the file
    page = write_run_page(args.page, masked, args.metrics, args.predictions, args.drift, cand.labels)
    log_run_page(p, tracking_uri(), masked.run_id, page, log)
    log.info(
        "%s: %s version %s, aliases %s",
        report["action"],
        report["name"],
        report["version"],
        report["aliases"],
    )
    _tell(masked, args.out)


def _tell(report: RegistryReport, path: str) -> None:
    """FTPIPE_NOTIFY told of a rejected candidate (the failed checks) or a promotion (every check)."""
    if report.action != "registered" or report.gate is None:
        return
    checks = report.gate.checks
    if not report.gate.promote:
        failed = "; ".join(f"{c.name}: {c.reason}" for c in checks if c.outcome == "fail")
        notify(f"ftpipe gate: rejected {report.name} version {report.version}", failed or "rejected", path)
    elif report.promoted:
        said = "; ".join(f"{c.name} {c.outcome}: {c.reason}" for c in checks)
        notify(f"ftpipe: {report.name} version {report.version} promoted to champion", said, path)


if __name__ == "__main__":
    main()
