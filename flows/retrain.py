"""retrain: the main job. Runs `dvc.yaml`'s DAG as a Prefect flow, one task per stage.

    ftpipe run                                  # or `make run`: the whole DAG on the defaults
    ftpipe run --target label -S clean.min_chars=30 --force
    ftpipe serve-schedule                       # the same flow on `retrain.schedule_cron` (needs a server)

The tasks are built from the DAG that DVC reads from `dvc.yaml` (never a hand-kept list) and each one
runs `dvc repro --single-item STAGE`, so DVC alone decides what is stale and keeps `dvc.lock`: `dvc
repro` stays an equivalent way to run the same pipeline. Stages that reach the network retry with
backoff (`retrain` section of params.yaml). The run ends with a summary, printed and kept as a Prefect
markdown artifact: each stage ran or was skipped and how long it took, the headline metrics beside the
baseline's, and the registry decision with its reasons.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field

from stages.common.params import ParamsError, StageParams, read_params_file, validate_section
from stages.common.redact import mask_secrets

SECTION = "retrain"
SUMMARY_ARTIFACT_KEY = "retrain-summary"
METRICS_REPORT = "metrics.json"  # file names looked up among the stages' declared outputs
REGISTRY_REPORT = "registry.json"
PROFILE_REPORT = "data_profile.json"
DRIFT_AFTER = "validate"  # the stage after which the flow compares the new data with the champion's
LABEL_REPORT = "label.json"
DEFAULT_DEPLOYMENT = "scheduled-retrain"  # also the deployment name in prefect.yaml
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class RetrainParams(StageParams):
    """The `retrain` section of params.yaml (the flow's own knobs; no DVC stage depends on them)."""

    network_stages: list[str] = Field(
        default_factory=lambda: ["register"],
        description="stages that reach the network and retry; ingest joins when ingest.source is a URL",
    )
    retries: int = Field(2, ge=0, le=10, description="retries of a network stage after its first try")
    retry_delay_s: float = Field(10.0, ge=0, description="delay before the first retry; doubles each time")
    schedule_cron: str = Field("0 3 * * 1", min_length=1, description="serve-schedule's default cron")
    timezone: str = Field("UTC", min_length=1, description="time zone of schedule_cron")


class RetrainError(RuntimeError):
    """The flow cannot start: not a DVC repo, an unknown target, a bad override. Says what to fix."""


class StageFailed(RuntimeError):
    """A stage exited non-zero; `str()` is the stage's name and its own error message."""

    def __init__(self, stage: str, message: str, seconds: float = 0.0, stderr_tail: str = ""):
        super().__init__(f"stage '{stage}' failed: {message}")
        self.stage, self.message, self.seconds, self.stderr_tail = stage, message, seconds, stderr_tail


@dataclasses.dataclass(frozen=True)
class StageSpec:
    """One stage of dvc.yaml as the flow needs it."""

    name: str  # the stage name: also the Prefect task name
    addressing: str  # what `dvc repro` takes (differs from name only for nested dvc.yaml files)
    upstream: tuple[str, ...] = ()
    always_changed: bool = False
    json_outputs: tuple[str, ...] = ()  # its JSON outs/metrics (reports), relative to the repo root


@dataclasses.dataclass
class StageOutcome:
    name: str
    status: str  # ran | skipped | restored | failed | not run
    seconds: float = 0.0
    changed_nothing: bool = False  # ran (always_changed) but its report says nothing changed
    error: str | None = None


# ----------------------------------------------------------------------------------------- the DAG


def find_root(root: str | Path | None = None) -> Path:
    """The DVC repository root at or above `root` (the working directory by default)."""
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    start = Path(root or ".").resolve()
    try:
        return Path(Repo.find_root(str(start)))
    except NotDvcRepoError:
        raise RetrainError(
            f"{start} is not inside a DVC repository (no .dvc/ folder here or above). Run from the "
            "ftpipe checkout, or pass --root."
        ) from None


def read_dag(root: str | Path) -> list[StageSpec]:
    """The pipeline stages of `dvc.yaml`, dependencies first (ties kept in dvc.yaml order)."""
    import networkx as nx
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    root = Path(root).resolve()
    with Repo(str(root)) as repo:
        try:
            graph = repo.index.graph  # edges point from a stage to the stages it depends on
        except DvcException as exc:
            raise RetrainError(f"cannot read the DAG from {root / 'dvc.yaml'}: {exc}") from None
        position = {stage: i for i, stage in enumerate(repo.index.stages)}
        specs = []
        for stage in nx.lexicographical_topological_sort(graph.reverse(), key=lambda s: position.get(s, 0)):
            if not getattr(stage, "cmd", None):  # a `dvc add` .dvc file, not a pipeline stage
                continue
            upstream = sorted(s.name for s in graph.successors(stage) if getattr(s, "cmd", None))
            outs = [Path(str(out.fs_path)) for out in stage.outs]
            json_outs = sorted(str(p.relative_to(root)) for p in outs if p.suffix == ".json")
            dvcfile = Path(stage.path_in_repo).as_posix()  # DVC's own `addressing` is relative to the cwd
            specs.append(
                StageSpec(
                    name=stage.name,
                    addressing=stage.name if dvcfile == "dvc.yaml" else f"{dvcfile}:{stage.name}",
                    upstream=tuple(upstream),
                    always_changed=bool(stage.always_changed),
                    json_outputs=tuple(json_outs),
                )
            )
    return specs


def select_stages(dag: list[StageSpec], target: str | None) -> list[StageSpec]:
    """`target` and everything it depends on, in DAG order; the whole DAG when `target` is None."""
    if not target:
        return list(dag)
    by_name = {s.name: s for s in dag} | {s.addressing: s for s in dag}
    if target not in by_name:
        raise RetrainError(
            f"unknown target stage `{target}`; dvc.yaml has: {', '.join(s.name for s in dag)}."
        )
    keep, todo = set(), [by_name[target].name]
    while todo:
        name = todo.pop()
        if name not in keep:
            keep.add(name)
            todo.extend(by_name[name].upstream)
    return [s for s in dag if s.name in keep]


# ---------------------------------------------------------------------------------------- params


def load_retrain_params(root: str | Path) -> RetrainParams:
    """The `retrain` section of ROOT/params.yaml; defaults where the file or section is absent."""
    path = Path(root) / "params.yaml"
    if not path.is_file():
        return RetrainParams()
    data = read_params_file(path)
    return validate_section(SECTION, data.get(SECTION), RetrainParams, source=str(path))


def network_stages(root: str | Path, params: RetrainParams) -> set[str]:
    """Stages that get retries: `retrain.network_stages`, plus ingest when its source is a URL."""
    names = set(params.network_stages)
    path = Path(root) / "params.yaml"
    if path.is_file():
        source = (read_params_file(path).get("ingest") or {}).get("source")
        if isinstance(source, str) and _URL.match(source):
            names.add("ingest")
    return names


def retry_delays(params: RetrainParams) -> list[float]:
    """Exponential backoff: retry_delay_s, then twice that, and so on."""
    return [params.retry_delay_s * 2**i for i in range(params.retries)]


def _lookup(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return "(absent)"
        data = data[part]
    return data


def apply_overrides(root: str | Path, overrides: list[str], keep: bool = True) -> list[dict[str, Any]]:
    """Apply `key=value` overrides to the params files the way `dvc exp run -S` does, then check them.

    This is DVC's own code path (`dvc.utils.hydra.apply_overrides`, Hydra override grammar): the value
    is parsed as YAML-like, `+key=value` adds a new key, `~key` removes one, `file.yaml:key=value` picks
    another params file. Like `dvc exp run -S`, it edits the file in the workspace (comments kept), so
    the new values are what dvc.lock records. Returns [{file, key, old, new}] for the summary.

    Then params.yaml is checked (`ftpipe check`, with no overrides too): on a problem, or when an
    override cannot be applied, every file is put back byte for byte and ParamsProblems (one line per
    problem) or RetrainError is raised. `keep=False` always puts them back: a trial, the check that
    `ftpipe run` makes before the flow starts.
    """
    import yaml
    from dvc.exceptions import InvalidArgumentError
    from dvc.utils.cli_parse import to_path_overrides
    from dvc.utils.hydra import apply_overrides as dvc_apply_overrides

    from flows.check import ParamsProblems, params_problems

    root = Path(root)
    for item in overrides:
        key = item.partition(":")[2] if ":" in item.partition("=")[0] else item
        if "=" not in key and not key.startswith("~"):
            raise RetrainError(
                f"override `{item}` must look like key=value (e.g. clean.min_chars=30), like `dvc exp run -S`."
            )
    changes = []
    originals: dict[Path, bytes] = {}
    try:
        for file, items in to_path_overrides(overrides).items():
            path = root / file
            if not path.is_file():
                raise RetrainError(f"override {items}: params file {path} does not exist.")
            originals[path] = path.read_bytes()
            before = yaml.safe_load(originals[path]) or {}
            try:
                dvc_apply_overrides(path, items)
            except InvalidArgumentError as exc:
                cause = str(exc.__cause__ or exc).replace("\n", " ")
                raise RetrainError(f"cannot apply override {items} to {file}: {cause}") from None
            after = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            for item in items:
                key = item.partition("=")[0].lstrip("+~")
                changes.append(
                    {"file": file, "key": key, "old": _lookup(before, key), "new": _lookup(after, key)}
                )
        if problems := params_problems(root):
            raise ParamsProblems(problems)
    except BaseException:
        _restore(originals)
        raise
    if not keep:
        _restore(originals)
    return changes


def _restore(originals: dict[Path, bytes]) -> None:
    for path, text in originals.items():
        path.write_bytes(text)


# ------------------------------------------------------------------------------ running one stage


def stage_env() -> dict[str, str]:
    """The environment of a stage: this interpreter's bin first (dvc.yaml says `python`), quiet bars."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("TQDM_MININTERVAL", "10")  # a progress line every 10 s, not a flood in the logs
    env.setdefault("DVC_NO_ANALYTICS", "1")  # nothing leaves the machine
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("DO_NOT_TRACK", "1")
    return env


def _pump(stream: Any, sink: list[str], log: Callable[[str], None]) -> None:
    """Copy a child's output to `sink` and `log`, line by line (carriage returns end a line too), with
    secrets masked: the stage's stderr reaches the Prefect logs and the summary artifact."""
    buf = b""
    for chunk in iter(lambda: stream.read1(65536), b""):
        buf += chunk
        *lines, buf = re.split(rb"[\r\n]", buf)
        for raw in lines:
            if line := mask_secrets(raw.decode("utf-8", "replace").rstrip()):
                sink.append(line)
                log(line)
    if line := mask_secrets(buf.decode("utf-8", "replace").rstrip()):
        sink.append(line)
        log(line)


def repro_status(stdout: str) -> str:
    """What `dvc repro --single-item` did, from its own report: ran, restored or skipped."""
    if re.search(r"^Running stage '", stdout, re.M):
        return "ran"
    if re.search(r"^Stage '[^']+' is cached - skipping run", stdout, re.M):
        return "restored"  # DVC's run-cache had these exact inputs: outputs checked out, nothing ran
    return "skipped"


def stage_error(stderr_lines: list[str]) -> str:
    """The stage's own error: the last exception line(s), or its last stderr lines, or DVC's error."""
    lines = [ln for ln in stderr_lines if ln.strip()]
    own = [ln for ln in lines if not ln.startswith("ERROR: ")]
    starts = [i for i, ln in enumerate(own) if ln.startswith("Traceback (most recent call last)")]
    if starts:
        body = own[starts[-1] + 1 :]
        first = next((i for i, ln in enumerate(body) if not ln.startswith((" ", "\t"))), None)
        if first is not None:
            msg = body[first : first + 20]
            msg[0] = re.sub(r"^(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_]\w*(?::|$))", "", msg[0])  # a.b.Error -> Error
            return "\n".join(msg)
    if own:
        return "\n".join(own[-5:])
    dvc_errors = [ln.removeprefix("ERROR: ") for ln in lines if ln.startswith("ERROR: ")]
    return dvc_errors[-1] if dvc_errors else "no error output"


def report_says_unchanged(root: Path, spec: StageSpec) -> bool:
    """True when one of the stage's JSON reports says `"action": "unchanged"` (e.g. register)."""
    for rel in spec.json_outputs:
        try:
            data = json.loads((root / rel).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("action") == "unchanged":
            return True
    return False


def run_stage(
    spec: StageSpec, root: str | Path, force: bool = False, log: Callable[[str], None] = print
) -> StageOutcome:
    """Run one stage through `dvc repro --single-item`; raise StageFailed with its own message."""
    root = Path(root)
    cmd = [sys.executable, "-m", "dvc", "repro", "--single-item", spec.addressing]
    if force:
        cmd.append("--force")
    out: list[str] = []
    err: list[str] = []
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=root, env=stage_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pumps = [
        threading.Thread(target=_pump, args=(proc.stdout, out, log), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, err, log), daemon=True),
    ]
    for t in pumps:
        t.start()
    rc = proc.wait()
    for t in pumps:
        t.join()
    seconds = time.monotonic() - start
    if rc != 0:
        raise StageFailed(spec.name, stage_error(err), seconds, "\n".join(err[-20:]))
    status = repro_status("\n".join(out))
    changed_nothing = status == "ran" and spec.always_changed and report_says_unchanged(root, spec)
    return StageOutcome(spec.name, status, seconds, changed_nothing)


# -------------------------------------------------------------------------------------- the summary


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
    what = {
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
        verdict = {True: "passed: promoted to champion", False: "not passed: stays challenger"}.get(
            promote, "—"
        )
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
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------------- the flow


def _stage_task(spec: StageSpec, root: str, force: bool) -> StageOutcome:
    """Run one dvc.yaml stage (its Prefect task is named like the stage)."""
    from prefect import get_run_logger

    logger = get_run_logger()
    try:
        outcome = run_stage(spec, root, force, log=logger.info)
    except StageFailed as exc:
        logger.error("%s\n(last lines of its stderr:)\n%s", exc, exc.stderr_tail)
        raise
    logger.info("%s: %s in %.1f s", spec.name, outcome.status, outcome.seconds)
    return outcome


def _drift_due(repo: Path, dag: list[StageSpec], outcome: StageOutcome) -> bool:
    """Compare with the champion when the data just changed, or when training is about to run anyway."""
    downstream = [s.name for s in dag if DRIFT_AFTER in s.upstream]
    if not downstream:
        return False
    if outcome.status in ("ran", "restored"):
        return True
    from flows.drift import stale

    return stale(repo, downstream)


def _drift_task(root: str, validate_outputs: tuple[str, ...]) -> dict[str, Any]:
    """The new data profile against the champion's (registry read; retried like register)."""
    from prefect import get_run_logger

    from flows.drift import PROFILE_FILE, check_drift

    repo = Path(root)
    profile = next((repo / p for p in validate_outputs if Path(p).name == PROFILE_FILE), repo / "missing")
    result = check_drift(repo, profile)
    get_run_logger().info("drift: %s: %s", result["outcome"], result["reason"])
    return result


def _retrain(
    root: str | None = None,
    force: bool = False,
    target: str | None = None,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Run dvc.yaml's stages in dependency order through DVC; end with a summary."""
    from prefect import task
    from prefect.artifacts import create_markdown_artifact
    from prefect.cache_policies import NO_CACHE

    repo = find_root(root)
    params = load_retrain_params(repo)
    applied = apply_overrides(repo, list(overrides or []))
    dag = select_stages(read_dag(repo), target)
    retried = network_stages(repo, params)
    base = task(_stage_task, cache_policy=NO_CACHE)
    drift_task = task(_drift_task, name="drift", task_run_name="drift", cache_policy=NO_CACHE)
    drift: dict[str, Any] | None = None
    outcomes: list[StageOutcome] = []
    failure: BaseException | None = None
    for spec in dag:
        retries = params.retries if spec.name in retried else 0
        stage_task = base.with_options(
            name=spec.name,
            task_run_name=spec.name,
            retries=retries,
            retry_delay_seconds=retry_delays(params) if retries else 0,
        )
        try:
            outcomes.append(stage_task(spec, str(repo), force))
            if spec.name == DRIFT_AFTER and _drift_due(repo, dag, outcomes[-1]):
                drift = drift_task.with_options(
                    retries=params.retries if "register" in retried else 0,
                    retry_delay_seconds=retry_delays(params) if "register" in retried else 0,
                )(str(repo), spec.json_outputs)
                if drift["outcome"] == "fail":
                    message = f"drift against champion v{drift.get('champion')}: {drift['reason']}"
                    outcomes.append(StageOutcome("drift", "failed", error=message))
                    failure = StageFailed("drift", message)
                    break
        except StageFailed as exc:
            outcomes.append(StageOutcome(spec.name, "failed", exc.seconds, error=exc.message))
            failure = StageFailed(exc.stage, exc.message, exc.seconds, exc.stderr_tail)  # no task traceback
            break
        except Exception as exc:  # the task could not even start the stage
            message = mask_secrets(f"{type(exc).__name__}: {exc}")
            outcomes.append(StageOutcome(spec.name, "failed", error=message))
            failure = StageFailed(spec.name, message)
            break
    summary = build_summary(repo, dag, outcomes, applied, target, force, drift)
    markdown = render_markdown(summary)
    summary["markdown"] = markdown
    print(markdown, flush=True)
    create_markdown_artifact(markdown, key=SUMMARY_ARTIFACT_KEY, description="ftpipe retrain summary")
    if failure is not None:
        raise failure
    return summary


def build_flow() -> Any:
    """The Prefect flow object (built on first use so importing this module stays cheap)."""
    from prefect import flow

    # Prefect records `flows/retrain.py:<qualname>` as the deployment's entrypoint; name the function
    # like the module attribute that yields the flow (see `__getattr__`).
    _retrain.__name__ = _retrain.__qualname__ = "retrain"
    return flow(_retrain, name="retrain", validate_parameters=True)


def __getattr__(name: str) -> Any:
    # `retrain` (the flow) is created lazily: `flows/retrain.py:retrain` is the Prefect entrypoint.
    if name == "retrain":
        globals()["retrain"] = value = build_flow()
        return value
    raise AttributeError(name)


# ------------------------------------------------------------------------------------------ the CLI


def _cmd_run(args: argparse.Namespace) -> int:
    from flows.check import ParamsProblems
    from flows.retrain import retrain  # the lazily built flow

    try:  # the check before DVC starts, with the overrides tried and put back: each problem said once
        apply_overrides(find_root(args.root), args.overrides, keep=False)
    except ParamsProblems as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        tried = " with the -S overrides applied" if args.overrides else ""
        print(
            f"\nftpipe run: {len(exc.problems)} problem(s) in params.yaml{tried}; nothing ran and "
            "params.yaml is as it was.",
            file=sys.stderr,
        )
        return 2
    except (RetrainError, ParamsError) as exc:
        print(f"\nftpipe run: {exc}", file=sys.stderr)
        return 1
    try:
        retrain(root=args.root, force=args.force, target=args.target, overrides=args.overrides)
    except (StageFailed, RetrainError, ParamsError) as exc:
        print(f"\nftpipe run: {exc}", file=sys.stderr)
        return 1
    return 0


def _api_url() -> str | None:
    from prefect.settings import PREFECT_API_URL

    return os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value()


def _cmd_serve(args: argparse.Namespace) -> int:
    if not _api_url():
        print(
            "ftpipe serve-schedule: PREFECT_API_URL is not set. Schedules need a running Prefect server: "
            "the temporary server that `ftpipe run` starts on its own does not run schedules. Start one "
            "with `prefect server start` (it listens on 127.0.0.1:4200), then run "
            "`PREFECT_API_URL=http://127.0.0.1:4200/api ftpipe serve-schedule`.",
            file=sys.stderr,
        )
        return 2
    from prefect.schedules import Cron, Interval

    from flows.retrain import retrain

    repo = find_root(args.root)
    params = load_retrain_params(repo)
    if args.interval:
        schedule = Interval(args.interval)
    else:
        schedule = Cron(args.cron or params.schedule_cron, timezone=params.timezone)
    retrain.serve(
        name=args.name,
        schedules=[schedule],
        parameters={"root": str(repo)},
        limit=1,  # never two runs at once: DVC locks the repo
        tags=["ftpipe"],
        description="Scheduled retraining: runs dvc.yaml's stale stages; a run with unchanged inputs does nothing.",
    )
    return 0


def add_commands(sub: Any) -> None:
    """`ftpipe run` and `ftpipe serve-schedule`."""
    p = sub.add_parser(
        "run",
        help="run the pipeline (dvc.yaml) as the Prefect retrain flow",
        description="Run dvc.yaml's stages in dependency order through DVC (stale ones only), as a "
        "Prefect flow, and print a summary. Without PREFECT_API_URL, Prefect starts a temporary local "
        "server for the run.",
    )
    p.add_argument("--force", action="store_true", help="rerun every stage even if DVC says it is up to date")
    p.add_argument("--target", metavar="STAGE", help="run only STAGE and the stages it depends on")
    p.add_argument(
        "-S",
        "--set-param",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a param like `dvc exp run -S` (written to params.yaml); repeatable",
    )
    p.add_argument("--root", default=".", help="the repository (default: the working directory)")
    p.set_defaults(func=_cmd_run)

    s = sub.add_parser(
        "serve-schedule",
        help="serve the retrain flow on a cron schedule (needs a Prefect server)",
        description="Serve the retrain flow as a Prefect deployment on a schedule, in this process. "
        "Needs PREFECT_API_URL pointing at `prefect server start`.",
    )
    s.add_argument("--cron", help="cron expression (default: retrain.schedule_cron in params.yaml)")
    s.add_argument("--interval", type=float, metavar="SECONDS", help="an interval schedule instead of cron")
    s.add_argument(
        "--name", default=DEFAULT_DEPLOYMENT, help=f"deployment name (default {DEFAULT_DEPLOYMENT})"
    )
    s.add_argument("--root", default=".", help="the repository (default: the working directory)")
    s.set_defaults(func=_cmd_serve)


if __name__ == "__main__":
    from flows.cli import main

    main(["run", *sys.argv[1:]])
