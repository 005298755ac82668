"""The register stage's steps: gather what the registry holds, gate, publish the run and version, verify.

    report = register(params, load_candidate(...), tracking_uri(), params=..., truncation=..., ...)

`register` runs the four steps on one `RegisterRun` (the params, the registry, the candidate, the clock):
`gather` (is this model's hash registered already, or left half-done by a killed run?), `gate` (the pure
gate of stages/gate/checks.py against the champion of now, scored on the candidate's test rows it never
saw), `publish` (the MLflow run and a pending version, or a resumed version's new decision) and `verify`
(load the version back, compare with evaluate's predictions, and only then move the aliases). The inputs
come from stages/registry/inputs.py; every MLflow call goes through `Registry` (stages/registry/client.py).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow.entities.model_registry import ModelVersion

from stages.config.register import RegisterParams
from stages.core.label_sets import MULTI_LABEL_TASK
from stages.core.logs import VERBOSE_ENV
from stages.core.redact import mask_secrets, redact_uri
from stages.data.trained_on import TrainedOn
from stages.gate.checks import (
    Candidate,
    ChampionScore,
    Decision,
    drift_against,
    require_same_labels,
    run_gate,
    unseen_rows,
)
from stages.registry import tags as registry_tags
from stages.registry.card import gather_provenance, model_card
from stages.registry.client import Registration, Registry
from stages.registry.inputs import RegisterError, finite_number, history_metrics, metric_key
from stages.registry.lineage import flatten, lineage_tags, loggable_params, model_hash
from stages.registry.reader import VersionRecord
from stages.registry.tracking import TrackingUnavailable, describe_failure
from stages.reports.finetune import FinetuneReport
from stages.reports.profile import DataProfile
from stages.serving.manifest import ManifestError

LOG = logging.getLogger("ftpipe.register")
# comparison figures that also become version tags (`gate.<key>`)
COMPARISON_TAGS = (
    "rows",
    "left_out_seen",
    "mcnemar_p",
    "mcnemar_p_worse",
    "only_candidate_right",
    "only_champion_right",
    "candidate_errors",
    "champion_errors",
)
# label sets: the paired bootstrap's figures in place of McNemar's (stages/gate/checks.py SetComparison)
SET_COMPARISON_TAGS = (
    "rows",
    "left_out_seen",
    "primary_metric",
    "bootstrap_samples",
    "p_noninferiority",
    "p_superiority",
    "p_worse",
    "only_candidate_right",
    "only_champion_right",
    "candidate_errors",
    "champion_errors",
)


def decision_tags(d: Decision) -> dict[str, str]:
    """One outcome tag and one reason tag per check, the verdict, the policy, and the comparison numbers."""
    tags = {
        registry_tags.GATE_DECISION: "promote" if d.promote else "reject",
        registry_tags.GATE_POLICY: d.policy,
        registry_tags.GATE_CHAMPION_BEFORE: d.champion_before or "none",
        registry_tags.GATE_JSON: json.dumps(d.as_dict(), sort_keys=True),
    }
    for ch in d.checks:
        tags[registry_tags.gate_outcome(ch.name)] = ch.outcome
        tags[registry_tags.gate_reason(ch.name)] = ch.reason[:5000]
    if d.comparison:
        comparison: Mapping[str, object] = d.comparison
        for k in SET_COMPARISON_TAGS if "p_superiority" in comparison else COMPARISON_TAGS:
            tags[f"{registry_tags.GATE_PREFIX}{k}"] = str(comparison[k])
    return tags


# --------------------------------------------------------------------------- the champion side


def score_champion(reg: Registry, record: VersionRecord, cand: Candidate) -> ChampionScore:
    """The champion's predictions on the candidate's test rows it never trained or validated on."""
    rows = unseen_rows(cand.test, record.trained_on)
    score = ChampionScore(
        record.version,
        record.labels,
        ids=rows["id"].tolist(),
        left_out=len(cand.test) - len(rows),
        trained_on_known=record.trained_on is not None,
    )
    try:
        score.preds = reg.predict(record.version, rows["text"].tolist())
    except TrackingUnavailable:
        raise  # the store is gone: stop, rather than judge the candidate without its champion
    except ManifestError as exc:  # every changed file named: the reason promotion is blocked
        score.error = mask_secrets(f"ManifestError: {' '.join(str(exc).split())}")
    except Exception as exc:  # a champion that cannot be loaded blocks promotion, with the reason
        score.error = describe_failure(exc)
    return score


# --------------------------------------------------------------------------- the registration


def _report(reg: Registry, mv: ModelVersion, mhash: str, action: str, **extra: Any) -> dict[str, Any]:
    decision = json.loads(mv.tags.get(registry_tags.GATE_JSON, "null"))
    return {
        "action": action,
        "name": reg.name,
        "version": str(mv.version),
        "run_id": mv.run_id,
        "model_hash": mhash,
        "aliases": reg.aliases(str(mv.version)),
        "champion": reg.champion(),
        "promoted": bool(decision and decision["promote"]),
        "gate": decision,
        **extra,
        "tracking_uri": redact_uri(reg.uri),
    }


def _resumable(reg: Registry, same: list[ModelVersion], log: logging.Logger) -> ModelVersion | None:
    """The newest READY version of this model left pending or verified by an interrupted run; every other
    unfinished one (not READY, or an older duplicate) is marked broken, so none is ever aliased."""
    unfinished = [
        mv
        for mv in same
        if mv.tags.get(registry_tags.STATUS) in (registry_tags.PENDING, registry_tags.VERIFIED)
    ]
    ready = [mv for mv in unfinished if mv.status == "READY" and registry_tags.MANIFEST in mv.tags]
    keep = ready[-1] if ready else None
    for mv in unfinished:
        if mv is keep:
            continue
        why = (
            f"its registration was interrupted and the version is {mv.status}, not READY"
            if mv.status != "READY"
            else "an interrupted registration without a manifest of its files"
            if registry_tags.MANIFEST not in mv.tags
            else f"an interrupted duplicate of version {keep.version if keep else '?'}"
        )
        log.warning("marking version %s broken: %s", mv.version, why)
        reg.mark_broken(str(mv.version), why)
    return keep


@dataclass(frozen=True)
class RegisterInputs:
    """What a registration records beside the candidate: `register`'s keyword arguments, in one value."""

    params: dict[str, Any]  # params.yaml as read (logged flat, and hashed into the lineage tags)
    truncation: dict[str, Any]  # how the served model reads a text (tokenize's windowing and truncation)
    trained_on: TrainedOn | None = None
    profile: DataProfile | None = None
    profile_note: str = "no data profile given"
    repo: Path = Path(".")
    lock_path: str | Path = "dvc.lock"
    history_path: Path | None = None
    extra_artifacts: tuple[Path, ...] = ()
    training: FinetuneReport | None = None


@dataclass
class RegisterRun:
    """One registration in progress: the params, the registry, the candidate and the clock."""

    p: RegisterParams
    reg: Registry
    cand: Candidate
    log: logging.Logger
    t0: float  # perf_counter at the start (the report's total_s)
    mhash: str = ""  # the model folder's hash, set by `gather`
    timings: dict[str, float] = field(default_factory=dict)


def register(
    p: RegisterParams,
    cand: Candidate,
    uri: str,
    *,
    params: dict[str, Any],
    truncation: dict[str, Any],
    trained_on: TrainedOn | None = None,
    profile: DataProfile | None = None,
    profile_note: str = "no data profile given",
    repo: Path = Path("."),
    lock_path: str | Path = "dvc.lock",
    history_path: Path | None = None,
    extra_artifacts: list[Path] | None = None,
    training: FinetuneReport | None = None,
    log: logging.Logger | None = None,
) -> dict[str, Any]:
    """Register `cand` unless its hash is already registered; return the registry report.

    `trained_on` (the train and validation ids and groups) and `profile` (the validate stage's data
    profile) are stored with the version; without them a later candidate is compared with it on all rows
    and no drift is measured against it. `training` (the finetune report) goes into the model card.
    Four steps: gather (what the registry holds of this model), gate, publish (run + version), verify.
    """
    inputs = RegisterInputs(
        params=params,
        truncation=truncation,
        trained_on=trained_on,
        profile=profile,
        profile_note=profile_note,
        repo=repo,
        lock_path=lock_path,
        history_path=history_path,
        extra_artifacts=tuple(extra_artifacts or ()),
        training=training,
    )
    t0 = time.perf_counter()
    run = RegisterRun(p, Registry.connect(uri, p.model_name, p.policy()), cand, log or LOG, t0)
    finished, resume = gather(run)
    if finished is not None:
        return finished
    decision, record = gate(run, inputs)
    run_id, version, verified = publish(run, inputs, decision, resume)
    report = verify(run, decision, run_id, version, verified)
    if resume is not None:
        report["resumed"] = True
    report["trained_on"] = trained_on.summary() if trained_on else "no record"
    report["profile"] = profile_note
    report["champion_notes"] = record.notes if record else []
    return report


def gather(run: RegisterRun) -> tuple[dict[str, Any] | None, ModelVersion | None]:
    """What the registry holds of this model: (the report, when nothing is left to do; the version an
    interrupted run left to resume, or None). Settles a champion change a killed run left half-written."""
    reg, log = run.reg, run.log
    for note in reg.reconcile_history():  # a champion change a killed run left half-written
        log.warning("%s", note)
    run.mhash = model_hash(run.cand.model_dir)
    same = reg.versions_with_hash(run.mhash)
    # a version registered before manifests cannot be loaded (nothing to check its files against):
    # it does not count, and the model is registered again
    done = [
        mv
        for mv in same
        if mv.tags.get(registry_tags.STATUS) == registry_tags.COMPLETE and registry_tags.MANIFEST in mv.tags
    ]
    if not done and any(mv.tags.get(registry_tags.STATUS) == registry_tags.COMPLETE for mv in same):
        log.info(
            "model %s has versions without a manifest of their files: registering it again", run.mhash[:12]
        )
    if done:
        mv = done[-1]
        log.info("model %s is already version %s of %s: nothing new", run.mhash[:12], mv.version, reg.name)
        return _report(reg, mv, run.mhash, "unchanged"), None
    resume = _resumable(reg, same, log)
    if (
        resume is not None
        and resume.tags.get(registry_tags.STATUS) == registry_tags.VERIFIED
        and reg.champion() == str(resume.version)
    ):
        # an earlier run moved the champion to it and stopped before marking it complete
        log.info("resuming version %s: already champion, marking it complete", resume.version)
        reg.finish(str(resume.version), True, "passed every gate check (resumed)")
        report = _report(reg, reg.version(str(resume.version)), run.mhash, "registered", resumed=True)
        return report, resume
    return None, resume


def gate(run: RegisterRun, inputs: RegisterInputs) -> tuple[Decision, VersionRecord | None]:
    """The gate's decision against the champion of now (also for a resumed version: the champion or the
    gate's params may have changed), and the champion's record (None: no champion yet)."""
    record = run.reg.champion_record()
    # a champion trained on another task's labels: register nothing
    require_same_labels(run.p.gate, run.reg.name, run.cand.labels, record)
    champion = None
    if record is not None:
        t = time.perf_counter()
        champion = score_champion(run.reg, record, run.cand)
        run.timings["score_champion_s"] = round(time.perf_counter() - t, 2)
        for note in record.notes:
            run.log.info("champion: %s", note)
    drift, drift_note = drift_against(record, inputs.profile, inputs.profile_note)
    decision = run_gate(run.p.gate, run.cand, champion, drift, drift_note)
    run.log.info(
        "gate (%s): %s (%s)",
        decision.policy,
        "promote" if decision.promote else "reject",
        "; ".join(f"{c.name} {c.outcome}" for c in decision.checks),
    )
    return decision, record


def publish(
    run: RegisterRun, inputs: RegisterInputs, decision: Decision, resume: ModelVersion | None
) -> tuple[str, str, bool]:
    """Log the run and register a new version (status pending), or give a resumed version the gate's new
    decision; (run_id, version, whether an earlier run verified it already)."""
    registration = build_registration(run, inputs, decision)
    if resume is None:
        run_id, version = run.reg.log_registration(registration, run.timings)
        return run_id, version, False
    # a version an earlier run left pending or verified: no duplicate, its decision replaced
    run_id, version = str(resume.run_id), str(resume.version)
    run.log.info(
        "resuming version %s (left %s by an interrupted run) with the gate's new decision: %s",
        version,
        resume.tags.get(registry_tags.STATUS),
        "promote" if decision.promote else "reject",
    )
    run.reg.redecide(version, run_id, decision_tags(decision), registration.card(run_id))
    return run_id, version, resume.tags.get(registry_tags.STATUS) == registry_tags.VERIFIED


def build_registration(run: RegisterRun, inputs: RegisterInputs, decision: Decision) -> Registration:
    """Everything the run and the version record: lineage and gate tags, params, metrics, files, card."""
    p, cand, name = run.p, run.cand, run.reg.name
    tags = lineage_tags(inputs.repo, inputs.lock_path, cand.labels, inputs.params, run.mhash)
    if cand.task == MULTI_LABEL_TASK:  # single-label versions keep the tags they always had
        tags[registry_tags.TASK] = MULTI_LABEL_TASK
    metrics = {f"test.{k}": v for k, v in flatten(cand.metrics.get("model", {})).items()}
    for part in ("baseline", "delta", "inference"):
        metrics |= {f"{part}.{k}": v for k, v in flatten(cand.metrics.get(part, {})).items()}
    metrics |= {f"gate.{k}": v for k, v in flatten(decision.comparison or {}).items()}  # incl. per class
    metrics |= {f"drift.{k}": v for k, v in flatten(decision.drift or {}).items()}
    files = [*inputs.extra_artifacts, inputs.history_path]
    return Registration(
        run_name=f"register-{run.mhash[:12]}",
        tags={**tags, **decision_tags(decision)},
        params=loggable_params(inputs.params),
        metrics={metric_key(k): float(v) for k, v in metrics.items() if finite_number(v)},
        step_metrics=history_metrics(inputs.history_path),
        files=[Path(f) for f in files if f is not None and Path(f).is_file()],
        card=lambda run_id: model_card(
            name,
            cand,
            decision,
            tags,
            run_id,
            inputs.truncation,
            inputs.trained_on,
            inputs.profile_note + ".",
            inputs.training,
            gather_provenance(inputs.params, inputs.lock_path, cand.model_dir),
        ),
        trained_on=inputs.trained_on,
        profile=inputs.profile,
        model_dir=cand.model_dir,
        model_config={**inputs.truncation, "batch_size": p.batch_size, "quantize": p.quantize},
        example_texts=[t[:500] for t in cand.test["text"].head(2)],
        await_registration_s=p.await_registration_s,
        label_sets=cand.task == MULTI_LABEL_TASK,
        labels=list(cand.labels),
    )


def verify(
    run: RegisterRun, decision: Decision, run_id: str, version: str, verified: bool = False
) -> dict[str, Any]:
    """Aliases only for a version that is READY and re-predicts what evaluate saw; else tag it broken.

    `verified`: an earlier run checked it already (a resumed version tagged verified)."""
    reg = run.reg
    agreement = check_served(run, version, verified)
    reg.set_status(version, registry_tags.VERIFIED, **{registry_tags.VERIFY_AGREEMENT: f"{agreement:.4f}"})
    champ = decision.champion_before
    reg.finish(
        version,
        decision.promote,
        "passed every gate check" + (f" against champion v{champ}" if champ else " (first champion)"),
    )
    run.timings["total_s"] = round(time.perf_counter() - run.t0, 2)
    run.log.info(
        "registered %s version %s (%s) in %.1f s",
        reg.name,
        version,
        "champion" if decision.promote else "challenger",
        run.timings["total_s"],
    )
    return _report(
        reg,
        reg.version(version),
        run.mhash,
        "registered",
        verify_agreement=agreement,
        timings=run.timings,
    ) | {"run_id": run_id, "promoted": decision.promote, "gate": decision.as_dict()}


def check_served(run: RegisterRun, version: str, verified: bool) -> float:
    """The registered version's agreement with the evaluated predictions on `verify_rows` test rows; a
    version that is not READY or agrees too little is tagged broken and RegisterError raised."""
    p, reg = run.p, run.reg
    mv = reg.version(version)
    status = mv.status
    t = time.perf_counter()
    sample = run.cand.test.head(p.verify_rows)
    if verified and status == "READY":
        agreement, error = float(mv.tags.get(registry_tags.VERIFY_AGREEMENT, "1")), None
    elif status != "READY":
        agreement, error = 0.0, f"version status {status}, not READY"
    else:
        agreement, error = reg.verify(version, sample["text"].tolist(), sample["pred"].astype(str).tolist())
    run.timings["verify_s"] = round(time.perf_counter() - t, 2)
    if error is None and agreement < p.verify_min_agreement:
        error = (
            f"it agrees with the evaluated predictions on {agreement:.1%} of {len(sample)} test rows "
            f"(register.verify_min_agreement = {p.verify_min_agreement:.0%}); the served model does not "
            "see what evaluate saw (tokenizer or truncation mismatch?)"
        )
    if error is not None:
        reg.mark_broken(version, error)
        raise RegisterError(
            f"registered {reg.name} version {version} is broken and got no alias: {error}. Fix the cause and "
            "run the register stage again; the broken version stays in the registry tagged "
            f"{registry_tags.STATUS}={registry_tags.BROKEN}."
        )
    return agreement


def failure_paragraph(exc: BaseException, out: str | Path) -> str:
    """Why register failed, as one masked paragraph (the exception's type and text on one line); the
    previous report `out` is left as it was (dvc.yaml keeps it: `persist: true`)."""
    text = " ".join(str(exc).split()) or "no message"
    return mask_secrets(
        f"{type(exc).__name__}: {text} ({out} is left as the last successful run wrote it; run with -v "
        f"or {VERBOSE_ENV}=1 for the traceback)"
    )
