"""The retrain flow's summary: what ran, the data, the metrics and the registry decision.

`build_summary` gathers it as plain data (the flow's return value) from the stage outcomes and the
JSON reports the stages declare in dvc.yaml; `render_markdown` turns it into the markdown that `ftpipe
run` prints and keeps as the Prefect artifact `retrain-summary`. A report is shown as this run's only
when its stage ran in it: the drift check against the champion is the drift stage's report, so a run
in which DVC skipped that stage shows the recorded outcome, unchanged since the last run, and never
compares anything itself.

Each report is read through the typed model its stage writes it with (`stages/reports/`), and the
markdown reads attributes of those models, not string keys: a report that is not JSON, or lacks a
field the summary reads, is named under "Reports not shown" instead of blanking a line unnoticed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NotRequired, TypedDict, TypeVar

from pydantic import ValidationError

from flows.dag import StageSpec
from flows.params import Override
from flows.runner import StageOutcome
from stages.reports.base import ReportModel
from stages.reports.clean import CleanReport
from stages.reports.drift import DriftReport
from stages.reports.evaluate import MetricsReport
from stages.reports.label import LabelMovement, LabelReport
from stages.reports.register import RegistryReport
from stages.reports.validate import DataProfileReport, ProfileHeadline

METRICS_REPORT = "metrics.json"  # file names looked up among the stages' declared outputs
REGISTRY_REPORT = "registry.json"
PROFILE_REPORT = "data_profile.json"
LABEL_REPORT = "label.json"
CLEAN_REPORT = "clean.json"
DRIFT_REPORT = "drift.json"

R = TypeVar("R", bound=ReportModel)


class StageRow(TypedDict):
    """One stage's line of the summary (a StageOutcome as plain data)."""

    name: str
    status: str
    seconds: float
    changed_nothing: bool
    error: str | None


class CleanCounts(TypedDict):
    """Rows in and out of `clean` (None where an older report lacks the count)."""

    rows_in: int | None
    rows_out: int | None
    rejected: int | None
    reject_reasons: dict[str, int]
    duplicates: int | None


class Summary(TypedDict):
    """The flow's return value: what ran, and each report as plain data (None where none is on disk)."""

    status: str  # completed | failed
    failed_stage: str | None
    error: str | None
    up_to_date: bool
    changed_stages: list[str]
    stages: list[StageRow]
    total_seconds: float
    target: str | None
    force: bool
    overrides: list[Override]
    metrics: dict[str, Any] | None  # a report's `dump()`: pydantic's model_dump, untyped
    metrics_fresh: bool
    registry: dict[str, Any] | None
    registry_fresh: bool
    data: dict[str, Any] | None
    data_fresh: bool
    drift: dict[str, Any] | None
    drift_status: str | None
    data_warnings: list[str]
    clean: CleanCounts | None
    clean_fresh: bool
    unreadable_reports: list[str]
    markdown: NotRequired[str]  # set by the flow once rendered


class DataSummary(ProfileHeadline):
    """The data section: validate's headline, its failed checks, and what moved since the last run (label)."""

    failed_checks: list[str]
    new_rows: dict[str, int] | None  # None: no previous run to compare with (or no label report)
    changed_side: dict[str, int] | None
    removed_rows: int | None


def _errors(exc: ValidationError) -> str:
    """The first few problems of a report, each with the key it is about."""
    return "; ".join(
        f"`{'.'.join(str(x) for x in e['loc']) or '(top level)'}`: {e['msg']}" for e in exc.errors()[:3]
    )


def _read_report(
    root: Path, dag: list[StageSpec], filename: str, model: type[R], problems: list[str]
) -> tuple[R | None, str | None]:
    """The report named `filename` that a stage declares, parsed with `model`, and that stage's name;
    (None, None) when none is on disk. One that does not parse is None, and `problems` says why."""
    for spec in dag:
        for rel in spec.json_outputs:
            if Path(rel).name != filename or not (root / rel).is_file():
                continue
            fix = f"`dvc repro {spec.addressing}` writes it anew"
            try:
                return model.model_validate(json.loads((root / rel).read_text(encoding="utf-8"))), spec.name
            except ValidationError as exc:
                problems.append(
                    f"{rel} (stage `{spec.name}`) lacks what the summary reads ({_errors(exc)}): written "
                    f"by another version of the stage, or edited; {fix}."
                )
            except ValueError as exc:
                problems.append(f"{rel} (stage `{spec.name}`) is not valid JSON ({exc}); {fix}.")
            return None, spec.name
    return None, None


def _plain(report: ReportModel | None) -> dict[str, Any] | None:
    return None if report is None else report.dump()


def build_summary(
    root: Path,
    dag: list[StageSpec],
    outcomes: list[StageOutcome],
    overrides: list[Override] | None = None,
    target: str | None = None,
    force: bool = False,
) -> Summary:
    """Everything the summary says, as plain data (the flow's return value)."""
    done = {o.name for o in outcomes}
    all_outcomes = outcomes + [StageOutcome(s.name, "not run") for s in dag if s.name not in done]
    failed = next((o for o in all_outcomes if o.status == "failed"), None)
    changed = [o.name for o in all_outcomes if o.status in ("ran", "restored") and not o.changed_nothing]
    problems: list[str] = []
    metrics, metrics_stage = _read_report(root, dag, METRICS_REPORT, MetricsReport, problems)
    registry, registry_stage = _read_report(root, dag, REGISTRY_REPORT, RegistryReport, problems)
    profile, profile_stage = _read_report(root, dag, PROFILE_REPORT, DataProfileReport, problems)
    label, _ = _read_report(root, dag, LABEL_REPORT, LabelReport, problems)
    clean, clean_stage = _read_report(root, dag, CLEAN_REPORT, CleanReport, problems)
    drift, drift_stage = _read_report(root, dag, DRIFT_REPORT, DriftReport, problems)
    return {
        "status": "failed" if failed else "completed",
        "failed_stage": failed.name if failed else None,
        "error": failed.error if failed else None,
        "up_to_date": not failed and not changed,
        "changed_stages": changed,
        "stages": [_row(o) for o in all_outcomes],
        "total_seconds": round(sum(o.seconds for o in all_outcomes), 2),
        "target": target,
        "force": force,
        "overrides": overrides or [],
        "metrics": _plain(metrics),
        "metrics_fresh": metrics_stage in changed,
        "registry": _plain(registry),
        "registry_fresh": registry_stage in changed,
        "data": _plain(data_summary(profile, label)),
        "data_fresh": profile_stage in changed or (failed is not None and failed.name == profile_stage),
        "drift": _plain(drift),
        # what the drift stage did this run: ran | restored | failed (its report written first) | skipped
        "drift_status": next((o.status for o in all_outcomes if o.name == drift_stage), None),
        # a length limit that removed more than clean.warn_class_fraction of a class (stages/clean.py)
        "data_warnings": [w.message for w in clean.length_warnings] if clean else [],
        "clean": clean_counts(clean),
        "clean_fresh": clean_stage in changed,
        "unreadable_reports": problems,  # reports on disk that did not parse: named, not silently left out
    }


def _row(o: StageOutcome) -> StageRow:
    return StageRow(
        name=o.name, status=o.status, seconds=o.seconds, changed_nothing=o.changed_nothing, error=o.error
    )


def clean_counts(clean: CleanReport | None) -> CleanCounts | None:
    """Rows in and out of `clean`, its rejects by reason and the duplicates it collapsed (a count that
    newer clean reports carry; None where the report predates it)."""
    if clean is None:
        return None
    return {
        "rows_in": getattr(clean, "rows_in", None),
        "rows_out": getattr(clean, "rows_out", None),
        "rejected": getattr(clean, "rejected", None),
        "reject_reasons": getattr(clean, "reject_reasons", None) or {},
        "duplicates": getattr(clean, "duplicates", None),
    }


def data_summary(profile: DataProfileReport | None, label: LabelReport | None) -> DataSummary | None:
    """The data profile's headline (validate), its failed checks, and what moved since the last run (label)."""
    if profile is None:
        return None
    moves = label.movement if label is not None else LabelMovement()
    return DataSummary(
        **profile.headline.dump(),
        failed_checks=[c.message for c in profile.checks if c.outcome == "fail"],
        new_rows=moves.new,
        changed_side=moves.changed_side,
        removed_rows=moves.removed,
    )


_RESULT_TEXT = {
    "ran": "ran",
    "skipped": "skipped (up to date)",
    "restored": "restored from DVC's run cache (not rerun)",
    "failed": "**FAILED**",
    "not run": "not run",
}


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "—" if value is None else str(value)


def _metrics_md(summary: Summary) -> list[str]:
    if summary.get("metrics") is None:
        return []
    m = MetricsReport.model_validate(summary["metrics"])
    model, base, delta = m.model.figures(), m.baseline.figures(), m.delta or {}
    primary = m.primary_metric
    keys = sorted(model, key=lambda k: (k != primary, k))
    when = "this run" if summary["metrics_fresh"] else "unchanged since an earlier run"
    lines = [
        "",
        f"### Metrics ({when}; primary: {primary or '—'})",
        "",
        "| metric | model | baseline | delta |",
        "|---|---|---|---|",
    ]
    for k in keys:
        b = base.get(k)
        d = delta.get(k, model[k] - b if b is not None else None)
        d_txt = f"{d:+.4f}" if d is not None else "—"
        name = f"**{k}**" if k == primary else k
        lines.append(f"| {name} | {_fmt(model[k])} | {_fmt(b)} | {d_txt} |")
    return lines


def _data_md(summary: Summary) -> list[str]:
    if summary.get("data") is None:
        return []
    d = DataSummary.model_validate(summary["data"])
    fresh = bool(summary.get("data_fresh"))
    when = "this run" if fresh else "unchanged since an earlier run"
    verdict = "every check passed" if d.passed else f"**{d.failed} check(s) FAILED**"
    lines = ["", f"### Data ({when}; validate: {verdict} of {d.checks})", ""]
    if fresh:  # what moved is this run's news only when the data was read again in it
        lines += ["| split | rows | new since the last run | changed side |", "|---|---|---|---|"]
        for split in ("train", "validation", "test"):
            new = (d.new_rows or {}).get(split)
            moved = (d.changed_side or {}).get(split)
            lines.append(f"| {split} | {_fmt(d.rows.get(split))} | {_fmt(new)} | {_fmt(moved)} |")
    else:
        lines += ["| split | rows |", "|---|---|"]
        lines += [f"| {split} | {_fmt(d.rows.get(split))} |" for split in ("train", "validation", "test")]

    def num(x: float | None, pattern: str) -> str:
        return "—" if x is None else pattern.format(x)

    removed = f"; rows removed since the last run: {_fmt(d.removed_rows)}" if fresh else ""
    lines.append(
        f"Batches: {_fmt(d.batches)}; train median {num(d.median_chars, '{:.0f}')} characters, "
        f"{num(d.median_tokens, '{:.0f}')} tokens; truncated {num(d.truncated_share, '{:.1%}')}; "
        f"unknown tokens {num(d.unk_share, '{:.2%}')}{removed}."
    )
    lines += _clean_md(summary)
    lines += [f"- {m}" for m in d.failed_checks]
    return lines


def _clean_md(summary: Summary) -> list[str]:
    """One line: what clean kept, rejected (by reason) and collapsed as duplicates."""
    c = summary.get("clean")
    if not c or c.get("rows_in") is None:
        return []
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(c["reject_reasons"].items()))
    dup = f"; duplicates collapsed: {c['duplicates']}" if c.get("duplicates") is not None else ""
    when = "this run" if summary.get("clean_fresh") else "unchanged"
    return [
        f"Clean ({when}): {_fmt(c['rows_in'])} rows in, {_fmt(c['rows_out'])} kept; rejected "
        f"{_fmt(c['rejected'])}{f' ({reasons})' if reasons else ''}{dup}."
    ]


def _drift_md(summary: Summary) -> list[str]:
    """The drift stage's outcome: this run's, or the recorded one when the stage did not run."""
    if summary.get("drift") is None:
        return []
    drift = DriftReport.model_validate(summary["drift"])
    against = f" against champion v{drift.champion}" if drift.champion else ""
    outcome, reason = drift.outcome, drift.reason
    status = summary.get("drift_status")
    if status in ("ran", "failed"):
        return ["", f"Drift{against} (before training, this run): **{outcome}**: {reason}"]
    when = (
        "restored from DVC's run cache: compared when this data was last seen"
        if status == "restored"
        else "unchanged since the last run"
    )
    line = f"Drift{against} (before training, {when}): recorded outcome **{outcome}**: {reason}"
    champion = (
        RegistryReport.model_validate(summary["registry"]).champion if summary.get("registry") else None
    )
    if outcome == "skip" and drift.champion is None and champion is not None:
        line += (
            f" (recorded before champion v{champion} existed: the drift stage compares again when the data "
            "changes)"
        )
    return ["", line]


def _registry_md(summary: Summary) -> list[str]:
    if summary.get("registry") is None:
        return []
    r = RegistryReport.model_validate(summary["registry"])
    aliases = ", ".join(r.aliases) or "none"
    if not _registry_news(summary):  # the gate did not run: its recorded result is old news
        gate = ""
        if r.gate is not None:
            then = "passed" if r.gate.promote else "not passed"
            gate = f" Gate: unchanged (recorded when version {r.version} was registered: {then})."
        return [
            "",
            "### Registry (unchanged)",
            "",
            f"`{r.name}` version {r.version} (run {r.run_id}): nothing new (this model is already "
            f"registered); aliases: {aliases}; champion: version {_fmt(r.champion)}, unchanged.{gate}",
        ]
    lines = [
        "",
        "### Registry",
        "",
        f"`{r.name}` version {r.version} (run {r.run_id}): registered a new version; aliases: {aliases}; "
        f"champion: version {_fmt(r.champion)}.",
    ]
    if r.gate is not None:
        verdict = "passed: promoted to champion" if r.gate.promote else "not passed: stays challenger"
        lines.append(f"Gate: **{verdict}**.")
        if r.gate.checks:
            lines += ["", "| check | outcome | reason |", "|---|---|---|"]
            lines += [f"| {c.name} | {c.outcome} | {c.reason} |" for c in r.gate.checks]
    return lines


def _registry_news(summary: Summary) -> bool:
    """The registry report is this run's news: its stage ran in it and registered something."""
    registry = summary["registry"]
    return bool(summary["registry_fresh"]) and registry is not None and registry.get("action") != "unchanged"


def _up_to_date_head(summary: Summary) -> str:
    """What a run that changed nothing says: what did not change, and the champion as it stands."""
    stages = summary["stages"]
    ran_nothing_new = [s["name"] for s in stages if s["changed_nothing"]]
    head = (
        f"**Up to date**: nothing changed (data, params and code as at the last run); every stage "
        f"skipped ({len(stages)} stages checked). Nothing new."
    )
    if ran_nothing_new:
        head = (
            f"**Up to date**: nothing changed (data, params and code as at the last run); no stage had "
            f"changed inputs; {', '.join(ran_nothing_new)} ran (always checked) and changed nothing. "
            "Nothing new."
        )
    reg = summary.get("registry")
    if reg:
        head += f" Champion: `{reg.get('name')}` version {_fmt(reg.get('champion'))}, unchanged."
    return head


def render_markdown(summary: Summary, error_inline: bool = True) -> str:
    """The summary as markdown: the Prefect artifact and what `ftpipe run` prints.

    `error_inline=False` leaves a failure's message out (`ftpipe run` prints it once, as its last line).
    """
    stages = summary["stages"]
    if summary["status"] == "failed":
        error = f": {summary['error']}" if error_inline else " (the error follows the summary)"
        head = f"**FAILED** at stage `{summary['failed_stage']}`{error}"
    elif summary["up_to_date"]:
        head = _up_to_date_head(summary)
    else:  # every stage the table shows as run or restored, the ones that changed nothing named so
        ran = [
            s["name"] + (" (changed nothing)" if s["changed_nothing"] else "")
            for s in stages
            if s["status"] in ("ran", "restored")
        ]
        head = f"**Ran {len(ran)} of {len(stages)} stages**: {', '.join(ran)}."
    lines = ["## ftpipe retrain", "", head]
    if summary["target"] or summary["force"]:
        lines.append(f"Target: `{summary['target'] or 'all'}`; force: {summary['force']}.")
    if summary["overrides"]:
        lines.append(
            "Params overrides (for this run only; params.yaml was put back after it): "
            + ", ".join(f"`{o['key']}`: {o['old']!r} -> {o['new']!r}" for o in summary["overrides"])
        )
    lines += ["", "| stage | result | time |", "|---|---|---|"]
    for s in stages:
        result = (
            "ran, changed nothing" if s["changed_nothing"] else _RESULT_TEXT.get(s["status"], s["status"])
        )
        secs = f"{s['seconds']:.1f} s" if s["status"] != "not run" else "—"
        lines.append(f"| {s['name']} | {result} | {secs} |")
    lines.append(f"| **total** | | {summary['total_seconds']:.1f} s |")
    lines += _data_md(summary) + _drift_md(summary) + _metrics_md(summary) + _registry_md(summary)
    if summary.get("data_warnings"):
        lines += ["", "### Data warnings (clean)", "", *(f"- {m}" for m in summary["data_warnings"])]
    if summary.get("unreadable_reports"):
        lines += ["", "### Reports not shown", "", *(f"- {m}" for m in summary["unreadable_reports"])]
    return "\n".join(lines + _next_step_md(summary)) + "\n"


def _next_step_md(summary: Summary) -> list[str]:
    """After a rejection (this run's or the recorded one, with no champion on it): the step that works."""
    if summary.get("registry") is None or summary["status"] == "failed":
        return []
    r = RegistryReport.model_validate(summary["registry"])
    if r.gate is None or r.gate.promote or r.champion == r.version:
        return []
    failed = ", ".join(c.name for c in r.gate.checks if c.outcome == "fail") or "none"
    return [
        "",
        f"**Next**: version {r.version} was not promoted (failed: {failed}). If the gate's keys do not fit "
        f"this task, change `register.gate` in params.yaml (each reason above names its key) and run "
        f"`ftpipe gate {r.version}`: it judges the version again and makes it champion if it passes "
        f"(`ftpipe run -S register.gate...` does not: the model is registered already). Or, after a look, "
        f'`ftpipe promote {r.version} --reason "..."`.',
    ]
