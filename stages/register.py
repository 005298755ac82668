"""register: log the run to MLflow, register the model version, run the promotion gate, move the aliases.

    python -m stages.register --model models/model --metrics reports/metrics.json \
        --predictions reports/predictions.csv --splits data/processed/splits \
        --labels data/processed/labels.json --profile data/processed/profile.json --out reports/registry.json

The wiring of four shared modules: stages/registry/client.py (every MLflow call: the run, the version,
aliases, tags, history; through stages/registry/tracking.py's retry policy and stages/registry/integrity.py's
manifest checks), stages/gate/checks.py (the pure gate), stages/registry/lineage.py (model hash,
lineage tags, the trained-on record) and stages/data/drift.py (the data profile against the champion's),
plus stages/registry/card.py. Each version stores what it trained on (ids and group keys of its train
and validation rows) and the data profile; the champion is scored only on the candidate's test rows that
it never trained or validated on. docs/registry-and-gate.md has the gate's table.

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
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import DatasetDict, load_from_disk
from mlflow.entities.model_registry import ModelVersion

from stages.config.params import load_section, read_params_file
from stages.config.paths import add_path_args
from stages.config.register import RegisterParams
from stages.config.tokenize import TokenizeParams
from stages.core.csvsafe import read_csv
from stages.core.io import read_json, write_json
from stages.core.logs import VERBOSE_ENV, setup_logging, verbose_requested
from stages.core.redact import mask_output, mask_secrets, redact_uri
from stages.data.drift import compare_profiles
from stages.gate.checks import (
    PRIMARY_METRICS,
    Candidate,
    ChampionScore,
    Decision,
    decision_tags,
    require_same_labels,
    run_gate,
    unseen_rows,
)
from stages.registry import tags as T
from stages.registry.card import gather_provenance, model_card
from stages.registry.client import Registration, Registry, VersionRecord
from stages.registry.lineage import TrainedOn, flatten, lineage_tags, loggable_params, model_hash
from stages.registry.tracking import TrackingUnavailable, describe_failure, tracking_uri
from stages.reports.register import RegistryReport
from stages.serving.manifest import ManifestError

__all__ = ["RegisterParams", "RegisterError", "load_candidate", "register", "main"]


LOG = logging.getLogger("ftpipe.register")


class RegisterError(ValueError):
    """The inputs cannot be registered, or the registered model is broken; the message says why."""


# --------------------------------------------------------------------------- inputs


def load_candidate(
    model_dir: str | Path,
    metrics_path: str | Path,
    predictions_path: str | Path,
    splits: str | Path | DatasetDict,
    labels_path: str | Path,
) -> Candidate:
    """Read and cross-check the model folder, metrics, predictions, test split and label map."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise RegisterError(f"{model_dir}: no config.json; run the finetune stage (`dvc repro finetune`).")
    labels_map = read_json(labels_path)
    labels = [labels_map[k] for k in sorted(labels_map, key=int)]
    id2label = read_json(model_dir / "config.json").get("id2label", {})
    model_labels = [id2label[k] for k in sorted(id2label, key=int)] if id2label else []
    if model_labels != labels:
        raise RegisterError(
            f"{model_dir}/config.json id2label {model_labels} differs from {labels_path} {labels}; the model "
            "was trained on other labels. Rerun finetune (`dvc repro`) so both come from the same split."
        )
    metrics = read_json(metrics_path)
    primary = metrics.get("primary_metric")
    if primary not in PRIMARY_METRICS:
        raise RegisterError(
            f"{metrics_path}: primary_metric {primary!r} is not one of {', '.join(PRIMARY_METRICS)}."
        )
    for part in ("model", "baseline"):
        if primary not in metrics.get(part, {}):
            raise RegisterError(f"{metrics_path}: `{part}.{primary}` is missing; rerun the evaluate stage.")
    # evaluate escaped formula-like cells (`'=...`); read_csv gives ids and labels back as they were
    preds = read_csv(predictions_path, dtype={"id": str, "label": str, "pred": str})
    missing_cols = {"id", "label", "pred", "correct"} - set(preds.columns)
    if missing_cols:
        raise RegisterError(
            f"{predictions_path}: columns {sorted(missing_cols)} are missing; rerun evaluate."
        )
    ds = splits if isinstance(splits, DatasetDict) else load_from_disk(str(splits))
    test = ds["test"]
    names = test.features["label"].names
    test_df = test.select_columns(
        [c for c in ("id", "text", "label", "group") if c in test.column_names]
    ).to_pandas()
    test_df["id"] = test_df["id"].astype(str)
    test_df["label"] = [names[i] for i in test_df["label"]]
    if set(test_df["id"]) != set(preds["id"]) or len(preds) != len(test_df):
        raise RegisterError(
            f"{predictions_path} has {len(preds)} rows that do not match the {len(test_df)} test examples of "
            f"{splits} by id; the predictions are stale. Rerun evaluate (`dvc repro evaluate`)."
        )
    merged = test_df.merge(preds[["id", "pred", "correct"]], on="id", how="left", validate="one_to_one")
    merged["correct"] = merged["correct"].astype(int)
    return Candidate(model_dir, metrics, primary, labels, merged)


def trained_on_from_splits(splits: str | Path | DatasetDict) -> TrainedOn:
    """The ids and group keys of the train and validation splits."""
    ds = splits if isinstance(splits, DatasetDict) else load_from_disk(str(splits))
    parts = {}
    for name in ("train", "validation"):
        part = ds[name]
        groups = part["group"] if "group" in part.column_names else [None] * len(part)
        parts[name] = ([str(i) for i in part["id"]], list(groups))
    return TrainedOn.from_splits(parts)


def read_profile(path: str | Path | None) -> tuple[dict[str, Any] | None, str]:
    """The data profile written by validate, or None with the reason (register works without it)."""
    if path is None:
        return None, "no data profile given (--profile)"
    if not Path(path).is_file():
        return None, f"no data profile: {path} is missing (run the validate stage)"
    return read_json(path), f"data profile from {path}"


def history_metrics(path: Path | None) -> list[tuple[str, float, int]]:
    """Training curves as (`history.<key>`, value, step); accepts Trainer log_history or {key: [values]}."""
    if path is None or not path.is_file():
        return []
    hist = read_json(path)
    if isinstance(hist, dict) and isinstance(hist.get("log_history"), list):
        hist = hist["log_history"]
    out = []
    if isinstance(hist, list):
        for i, rec in enumerate(r for r in hist if isinstance(r, dict)):
            step = int(rec.get("step", i))
            out += [
                (f"history.{_key(k)}", float(v), step) for k, v in rec.items() if k != "step" and _number(v)
            ]
    elif isinstance(hist, dict):
        for k, vals in hist.items():
            if isinstance(vals, list):
                out += [(f"history.{_key(k)}", float(v), i) for i, v in enumerate(vals) if _number(v)]
    return out


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _key(k: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", str(k))


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


def drift_against(
    record: VersionRecord | None, profile: dict[str, Any] | None, profile_note: str
) -> tuple[dict[str, Any] | None, str]:
    """The drift figures of `profile` against the champion's stored one, or None with the reason."""
    if record is None:
        return None, "no champion yet"
    if profile is None:
        return None, profile_note
    if record.profile is None:
        return None, f"champion v{record.version} has no stored data profile (registered before profiles)"
    return compare_profiles(record.profile, profile, record.trained_on), ""


# --------------------------------------------------------------------------- the registration


def _report(reg: Registry, mv: ModelVersion, mhash: str, action: str, **extra: Any) -> dict[str, Any]:
    decision = json.loads(mv.tags.get(T.GATE_JSON, "null"))
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
    unfinished = [mv for mv in same if mv.tags.get(T.STATUS) in (T.PENDING, T.VERIFIED)]
    ready = [mv for mv in unfinished if mv.status == "READY" and T.MANIFEST in mv.tags]
    keep = ready[-1] if ready else None
    for mv in unfinished:
        if mv is keep:
            continue
        why = (
            f"its registration was interrupted and the version is {mv.status}, not READY"
            if mv.status != "READY"
            else "an interrupted registration without a manifest of its files"
            if T.MANIFEST not in mv.tags
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
    profile: dict[str, Any] | None = None
    profile_note: str = "no data profile given"
    repo: Path = Path(".")
    lock_path: str | Path = "dvc.lock"
    history_path: Path | None = None
    extra_artifacts: tuple[Path, ...] = ()
    training: dict[str, Any] | None = None


@dataclass
class Session:
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
    profile: dict[str, Any] | None = None,
    profile_note: str = "no data profile given",
    repo: Path = Path("."),
    lock_path: str | Path = "dvc.lock",
    history_path: Path | None = None,
    extra_artifacts: list[Path] | None = None,
    training: dict[str, Any] | None = None,
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
    s = Session(p, Registry.connect(uri, p.model_name, p.policy()), cand, log or LOG, t0)
    finished, resume = gather(s)
    if finished is not None:
        return finished
    decision, record = gate(s, inputs)
    run_id, version, verified = publish(s, inputs, decision, resume)
    report = verify(s, decision, run_id, version, verified)
    if resume is not None:
        report["resumed"] = True
    report["trained_on"] = trained_on.summary() if trained_on else "no record"
    report["profile"] = profile_note
    report["champion_notes"] = record.notes if record else []
    return report


def gather(s: Session) -> tuple[dict[str, Any] | None, ModelVersion | None]:
    """What the registry holds of this model: (the report, when nothing is left to do; the version an
    interrupted run left to resume, or None). Settles a champion change a killed run left half-written."""
    reg, log = s.reg, s.log
    for note in reg.reconcile_history():  # a champion change a killed run left half-written
        log.warning("%s", note)
    s.mhash = model_hash(s.cand.model_dir)
    same = reg.versions_with_hash(s.mhash)
    # a version registered before manifests cannot be loaded (nothing to check its files against):
    # it does not count, and the model is registered again
    done = [mv for mv in same if mv.tags.get(T.STATUS) == T.COMPLETE and T.MANIFEST in mv.tags]
    if not done and any(mv.tags.get(T.STATUS) == T.COMPLETE for mv in same):
        log.info(
            "model %s has versions without a manifest of their files: registering it again", s.mhash[:12]
        )
    if done:
        mv = done[-1]
        log.info("model %s is already version %s of %s: nothing new", s.mhash[:12], mv.version, reg.name)
        return _report(reg, mv, s.mhash, "unchanged"), None
    resume = _resumable(reg, same, log)
    if (
        resume is not None
        and resume.tags.get(T.STATUS) == T.VERIFIED
        and reg.champion() == str(resume.version)
    ):
        # an earlier run moved the champion to it and stopped before marking it complete
        log.info("resuming version %s: already champion, marking it complete", resume.version)
        reg.finish(str(resume.version), True, "passed every gate check (resumed)")
        report = _report(reg, reg.version(str(resume.version)), s.mhash, "registered", resumed=True)
        return report, resume
    return None, resume


def gate(s: Session, inputs: RegisterInputs) -> tuple[Decision, VersionRecord | None]:
    """The gate's decision against the champion of now (also for a resumed version: the champion or the
    gate's params may have changed), and the champion's record (None: no champion yet)."""
    record = s.reg.champion_record()
    # a champion trained on another task's labels: register nothing
    require_same_labels(s.p.gate, s.reg.name, s.cand.labels, record)
    champion = None
    if record is not None:
        t = time.perf_counter()
        champion = score_champion(s.reg, record, s.cand)
        s.timings["score_champion_s"] = round(time.perf_counter() - t, 2)
        for note in record.notes:
            s.log.info("champion: %s", note)
    drift, drift_note = drift_against(record, inputs.profile, inputs.profile_note)
    decision = run_gate(s.p.gate, s.cand, champion, drift, drift_note)
    s.log.info(
        "gate (%s): %s (%s)",
        decision.policy,
        "promote" if decision.promote else "reject",
        "; ".join(f"{c.name} {c.outcome}" for c in decision.checks),
    )
    return decision, record


def publish(
    s: Session, inputs: RegisterInputs, decision: Decision, resume: ModelVersion | None
) -> tuple[str, str, bool]:
    """Log the run and register a new version (status pending), or give a resumed version the gate's new
    decision; (run_id, version, whether an earlier run verified it already)."""
    registration = build_registration(s, inputs, decision)
    if resume is None:
        run_id, version = s.reg.log_registration(registration, s.timings)
        return run_id, version, False
    # a version an earlier run left pending or verified: no duplicate, its decision replaced
    run_id, version = str(resume.run_id), str(resume.version)
    s.log.info(
        "resuming version %s (left %s by an interrupted run) with the gate's new decision: %s",
        version,
        resume.tags.get(T.STATUS),
        "promote" if decision.promote else "reject",
    )
    s.reg.redecide(version, run_id, decision_tags(decision), registration.card(run_id))
    return run_id, version, resume.tags.get(T.STATUS) == T.VERIFIED


def build_registration(s: Session, inputs: RegisterInputs, decision: Decision) -> Registration:
    """Everything the run and the version record: lineage and gate tags, params, metrics, files, card."""
    p, cand, name = s.p, s.cand, s.reg.name
    tags = lineage_tags(inputs.repo, inputs.lock_path, cand.labels, inputs.params, s.mhash)
    metrics = {f"test.{k}": v for k, v in flatten(cand.metrics.get("model", {})).items()}
    for part in ("baseline", "delta", "inference"):
        metrics |= {f"{part}.{k}": v for k, v in flatten(cand.metrics.get(part, {})).items()}
    metrics |= {f"gate.{k}": v for k, v in flatten(decision.comparison or {}).items()}  # incl. per class
    metrics |= {f"drift.{k}": v for k, v in flatten(decision.drift or {}).items()}
    files = [*inputs.extra_artifacts, inputs.history_path]
    return Registration(
        run_name=f"register-{s.mhash[:12]}",
        tags={**tags, **decision_tags(decision)},
        params=loggable_params(inputs.params),
        metrics={_key(k): float(v) for k, v in metrics.items() if _number(v)},
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
    )


def verify(
    s: Session, decision: Decision, run_id: str, version: str, verified: bool = False
) -> dict[str, Any]:
    """Aliases only for a version that is READY and re-predicts what evaluate saw; else tag it broken.

    `verified`: an earlier run checked it already (a resumed version tagged verified)."""
    reg = s.reg
    agreement = check_served(s, version, verified)
    reg.set_status(version, T.VERIFIED, **{T.VERIFY_AGREEMENT: f"{agreement:.4f}"})
    champ = decision.champion_before
    reg.finish(
        version,
        decision.promote,
        "passed every gate check" + (f" against champion v{champ}" if champ else " (first champion)"),
    )
    s.timings["total_s"] = round(time.perf_counter() - s.t0, 2)
    s.log.info(
        "registered %s version %s (%s) in %.1f s",
        reg.name,
        version,
        "champion" if decision.promote else "challenger",
        s.timings["total_s"],
    )
    return _report(
        reg,
        reg.version(version),
        s.mhash,
        "registered",
        verify_agreement=agreement,
        timings=s.timings,
    ) | {"run_id": run_id, "promoted": decision.promote, "gate": decision.as_dict()}


def check_served(s: Session, version: str, verified: bool) -> float:
    """The registered version's agreement with the evaluated predictions on `verify_rows` test rows; a
    version that is not READY or agrees too little is tagged broken and RegisterError raised."""
    p, reg = s.p, s.reg
    mv = reg.version(version)
    status = mv.status
    t = time.perf_counter()
    sample = s.cand.test.head(p.verify_rows)
    if verified and status == "READY":
        agreement, error = float(mv.tags.get(T.VERIFY_AGREEMENT, "1")), None
    elif status != "READY":
        agreement, error = 0.0, f"version status {status}, not READY"
    else:
        agreement, error = reg.verify(version, sample["text"].tolist(), sample["pred"].astype(str).tolist())
    s.timings["verify_s"] = round(time.perf_counter() - t, 2)
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
            f"{T.STATUS}={T.BROKEN}."
        )
    return agreement


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


def failure_paragraph(exc: BaseException, out: str | Path) -> str:
    """Why register failed, as one masked paragraph (the exception's type and text on one line); the
    previous report `out` is left as it was (dvc.yaml keeps it: `persist: true`)."""
    text = " ".join(str(exc).split()) or "no message"
    return mask_secrets(
        f"{type(exc).__name__}: {text} ({out} is left as the last successful run wrote it; run with -v "
        f"or {VERBOSE_ENV}=1 for the traceback)"
    )


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
        training=read_json(args.finetune_report) if Path(args.finetune_report).is_file() else None,
        log=log,
    )
    masked = RegistryReport.model_validate(json.loads(mask_secrets(json.dumps(report))))  # summary reads it
    write_json(args.out, masked.dump())  # nothing secret reaches the file
    log.info(
        "%s: %s version %s, aliases %s",
        report["action"],
        report["name"],
        report["version"],
        report["aliases"],
    )


if __name__ == "__main__":
    main()
