"""The retrain flow's summary: what ran, the data, the metrics and the registry decision.

`build_summary` gathers it as plain data (the flow's return value) from the stage outcomes and the
JSON reports the stages declare in dvc.yaml; `render_markdown` turns it into the markdown that `ftpipe
run` prints and keeps as the Prefect artifact `retrain-summary`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from flows.dag import StageSpec
from flows.runner import StageOutcome

METRICS_REPORT = "metrics.json"  # file names looked up among the stages' declared outputs
REGISTRY_REPORT = "registry.json"
PROFILE_REPORT = "data_profile.json"
LABEL_REPORT = "label.json"
CLEAN_REPORT = "clean.json"


def _read_report(root: Path, dag: list[StageSpec], filename: str) -> tuple[dict[str, Any] | None, str | None]:
    """The JSON report named `filename` that a stage declares, and that stage's name; (None, None)."""
    for spec in dag:
        for rel in spec.json_outputs:
            if Path(rel).name == filename and (root / rel).is_file():
                try:
                    return json.loads((root / rel).read_text(encoding="utf-8")), spec.name
                except ValueError:
                    return None, spec.name
    return None, None


def build_summary(
    root: Path,
    dag: list[StageSpec],
    outcomes: list[StageOutcome],
    overrides: list[dict[str, Any]] | None = None,
    target: str | None = None,
    force: bool = False,
    drift: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything the summary says, as plain data (the flow's return value)."""
    done = {o.name for o in outcomes}
    all_outcomes = outcomes + [StageOutcome(s.name, "not run") for s in dag if s.name not in done]
    failed = next((o for o in all_outcomes if o.status == "failed"), None)
    changed = [o.name for o in all_outcomes if o.status in ("ran", "restored") and not o.changed_nothing]
    metrics, metrics_stage = _read_report(root, dag, METRICS_REPORT)
    registry, registry_stage = _read_report(root, dag, REGISTRY_REPORT)
    profile, profile_stage = _read_report(root, dag, PROFILE_REPORT)
    label, _ = _read_report(root, dag, LABEL_REPORT)
    clean, _ = _read_report(root, dag, CLEAN_REPORT)
    return {
        "status": "failed" if failed else "completed",
        "failed_stage": failed.name if failed else None,
        "error": failed.error if failed else None,
        "up_to_date": not failed and not changed,
        "changed_stages": changed,
        "stages": [dataclasses.asdict(o) for o in all_outcomes],
        "total_seconds": round(sum(o.seconds for o in all_outcomes), 2),
        "target": target,
        "force": force,
        "overrides": overrides or [],
        "metrics": metrics,
        "metrics_fresh": metrics_stage in changed,
        "registry": registry,
        "registry_fresh": registry_stage in changed,
        "data": data_summary(profile, label),
        "data_fresh": profile_stage in changed or (failed is not None and failed.name == profile_stage),
        "drift": drift,
        # a length limit that removed more than clean.warn_class_fraction of a class (stages/clean.py)
        "data_warnings": [
            w.get("message") for w in (clean or {}).get("length_warnings") or [] if isinstance(w, dict)
        ],
    }


def data_summary(profile: dict[str, Any] | None, label: dict[str, Any] | None) -> dict[str, Any] | None:
    """The data profile's headline (validate), its failed checks, and what moved since the last run (label)."""
    if not isinstance(profile, dict) or not isinstance(profile.get("headline"), dict):
        return None
    moves = (label or {}).get("movement") or {}
    return {
        **profile["headline"],
        "failed_checks": [c["message"] for c in profile.get("checks", []) if c.get("outcome") == "fail"],
        "new_rows": moves.get("new"),
        "changed_side": moves.get("changed_side"),
        "removed_rows": moves.get("removed"),
    }


_RESULT_TEXT = {
    "ran": "ran",
    "skipped": "skipped (up to date)",
    "restored": "restored from DVC's run cache (not rerun)",
    "failed": "**FAILED**",
    "not run": "not run",
}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "—" if value is None else str(value)


def _metrics_md(summary: dict[str, Any]) -> list[str]:
    m = summary["metrics"]
    if not isinstance(m, dict) or not isinstance(m.get("model"), dict):
        return []
    model, base, delta = m["model"], m.get("baseline") or {}, m.get("delta") or {}
    primary = m.get("primary_metric")
    keys = [k for k, v in model.items() if isinstance(v, int | float) and not isinstance(v, bool)]
    keys = sorted(keys, key=lambda k: (k != primary, k))
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
        d = delta.get(k, model[k] - b if isinstance(b, int | float) else None)
        d_txt = f"{d:+.4f}" if isinstance(d, int | float) else "—"
        name = f"**{k}**" if k == primary else k
        lines.append(f"| {name} | {_fmt(model[k])} | {_fmt(b)} | {d_txt} |")
    return lines


def _data_md(summary: dict[str, Any]) -> list[str]:
    d = summary.get("data")
    if not isinstance(d, dict):
        return []
    when = "this run" if summary.get("data_fresh") else "unchanged since an earlier run"
    rows = d.get("rows") or {}
    verdict = "every check passed" if d.get("passed") else f"**{d.get('failed')} check(s) FAILED**"
    lines = [
        "",
        f"### Data ({when}; validate: {verdict} of {d.get('checks')})",
        "",
        "| split | rows | new since the last run | changed side |",
        "|---|---|---|---|",
    ]
    for split in ("train", "validation", "test"):
        new = (d.get("new_rows") or {}).get(split)
        moved = (d.get("changed_side") or {}).get(split)
        lines.append(f"| {split} | {_fmt(rows.get(split))} | {_fmt(new)} | {_fmt(moved)} |")

    def num(x: Any, pattern: str) -> str:
        return pattern.format(x) if isinstance(x, int | float) else "—"

    lines.append(
        f"Batches: {_fmt(d.get('batches'))}; train median {num(d.get('median_chars'), '{:.0f}')} characters, "
        f"{num(d.get('median_tokens'), '{:.0f}')} tokens; truncated {num(d.get('truncated_share'), '{:.1%}')}; "
        f"unknown tokens {num(d.get('unk_share'), '{:.2%}')}; rows removed since the last run: "
        f"{_fmt(d.get('removed_rows'))}."
    )
    lines += [f"- {m}" for m in d.get("failed_checks") or []]
    drift = summary.get("drift")
    if isinstance(drift, dict):
        against = f" against champion v{drift['champion']}" if drift.get("champion") else ""
        lines.append(f"Drift{against} (before training): **{drift.get('outcome')}**: {drift.get('reason')}")
    return lines


def _gate_rows(checks: Any) -> list[tuple[str, str, str]]:
    """(check, outcome, reason) rows from the gate's checks (a list of dicts, or a mapping)."""
    rows = []
    items = checks.items() if isinstance(checks, dict) else enumerate(checks or [])
    for key, c in items:
        if isinstance(c, dict):
            outcome = c.get("outcome", c.get("passed"))
            outcome = (
                {True: "pass", False: "fail"}.get(outcome, outcome) if isinstance(outcome, bool) else outcome
            )
            rows.append((str(c.get("name", key)), _fmt(outcome), str(c.get("reason") or "")))
        else:
            rows.append((str(key), "", str(c)))
    return rows


def _registry_md(summary: dict[str, Any]) -> list[str]:
    r = summary["registry"]
    if not isinstance(r, dict):
        return []
    action = r.get("action")
    what: dict[Any, str] = {
        "registered": "registered a new version",
        "unchanged": "nothing new (this model is already registered)",
    }
    when = "" if summary["registry_fresh"] or action == "unchanged" else " (unchanged since an earlier run)"
    aliases = r.get("aliases")
    aliases = ", ".join(aliases) if isinstance(aliases, list) else _fmt(aliases)
    lines = [
        "",
        f"### Registry{when}",
        "",
        f"`{r.get('name', '?')}` version {r.get('version', '?')} (run {r.get('run_id', '?')}): "
        f"{what.get(action, _fmt(action))}; aliases: {aliases or 'none'}; champion: "
        f"version {_fmt(r.get('champion'))}.",
    ]
    decision = r.get("gate") if isinstance(r.get("gate"), dict) else r.get("decision")
    if isinstance(decision, dict):
        promote = decision.get("promote", r.get("promoted"))
        verdicts: dict[Any, str] = {
            True: "passed: promoted to champion",
            False: "not passed: stays challenger",
        }
        verdict = verdicts.get(promote, "—")
        lines.append(f"Gate: **{verdict}**.")
        rows = _gate_rows(decision.get("checks"))
        if rows:
            lines += ["", "| check | outcome | reason |", "|---|---|---|"]
            lines += [f"| {n} | {res} | {why} |" for n, res, why in rows]
    return lines


def render_markdown(summary: dict[str, Any]) -> str:
    """The summary as markdown: the Prefect artifact and what `ftpipe run` prints."""
    stages = summary["stages"]
    if summary["status"] == "failed":
        head = f"**FAILED** at stage `{summary['failed_stage']}`: {summary['error']}"
    elif summary["up_to_date"]:
        ran_nothing_new = [s["name"] for s in stages if s["changed_nothing"]]
        head = (
            f"**Up to date**: every stage skipped; nothing ran, nothing new ({len(stages)} stages checked)."
        )
        if ran_nothing_new:
            head = (
                f"**Up to date**: no stage had changed inputs; {', '.join(ran_nothing_new)} ran (always "
                "checked) and changed nothing. Nothing new."
            )
    else:
        ran = summary["changed_stages"]
        head = f"**Ran {len(ran)} of {len(stages)} stages**: {', '.join(ran)}."
    lines = ["## ftpipe retrain", "", head]
    if summary["target"] or summary["force"]:
        lines.append(f"Target: `{summary['target'] or 'all'}`; force: {summary['force']}.")
    if summary["overrides"]:
        lines.append(
            "Params overrides (written to the params file, as `dvc exp run -S` does): "
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
    lines += _data_md(summary) + _metrics_md(summary) + _registry_md(summary)
    if summary.get("data_warnings"):
        lines += ["", "### Data warnings (clean)", "", *(f"- {m}" for m in summary["data_warnings"])]
    return "\n".join(lines) + "\n"
