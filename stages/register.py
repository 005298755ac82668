"""register: log the run to MLflow, register the model version, run the promotion gate, move the aliases.

    python -m stages.register --model models/model --metrics reports/metrics.json \
        --predictions reports/predictions.csv --splits data/processed/splits \
        --labels data/processed/labels.json --out reports/registry.json

MLflow lives at `MLFLOW_TRACKING_URI`, else in `mlflow.db` + `mlartifacts/` at the repository root
(stages/common/registry.py). One MLflow run per registration, in an experiment named after the model:
params.yaml flattened, the test metrics and the baseline's, the training history, the reports and plots,
a model card, and the model as a lean pyfunc (stages/common/textclf.py) that predicts `label` and `score`
from a `text` column. Lineage tags (git commit and dirtiness, dvc.lock hashes of the data and model
outputs, label-map and params hashes, library versions) go on the run and on the model version.

The gate (`register.gate.*`): a floor on the primary metric; not worse than the TF-IDF baseline by more
than a tolerance; and, when a champion exists, the champion is loaded from the registry and scored on the
*same* test split: the same label set (unless `allow_label_change`), a minimum improvement of the primary
metric, and a paired McNemar test on per-example correctness below `significance` (exact binomial when
there are fewer than 25 discordant pairs). Every version gets the `challenger` alias and a tag per check;
only a version that passes every check becomes `champion`.

Idempotent: the model folder's hash (weights + config) is a version tag, and a model that is already
registered is not registered again (`"action": "unchanged"` in the report). The stage is
`always_changed` in dvc.yaml, so a wiped registry is filled again by the next `dvc repro`. Aliases are set
last, after the version is READY and has been loaded back and checked against the evaluated predictions,
so a half-done registration never leaves an alias on a broken version; a rerun resumes one that was
verified but not finished.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import re
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import Field

from stages.common.io import read_json, write_json
from stages.common.logs import setup_logging
from stages.common.params import StageParams, load_section, read_params_file

PRIMARY_METRICS = (
    "accuracy",
    "macro_f1",
    "weighted_f1",
    "macro_precision",
    "macro_recall",
    "weighted_precision",
    "weighted_recall",
)
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
EXACT_BELOW = 25  # discordant pairs under which McNemar uses the exact binomial test
STATUS_TAG = "ftpipe.status"  # pending -> verified -> complete (or broken)
HASH_TAG = "ftpipe.model_hash"
_SECRET_KEY = re.compile(r"(secret|passw|api_?key|access_?key|credential|auth_?token|hf_token|^token$)", re.I)


class GateParams(StageParams):
    """`register.gate`: what a version must clear to become `champion`."""

    min_primary: float = Field(0.9, ge=0.0, le=1.0, description="absolute floor on the primary metric")
    baseline_tolerance: float = Field(0.02, ge=0.0, le=1.0, description="allowed shortfall vs the baseline")
    min_improvement: float = Field(
        0.0, ge=-1.0, le=1.0, description="primary-metric gain needed over the champion"
    )
    significance: float = Field(0.05, gt=0.0, le=1.0, description="McNemar p-value must be below this")
    allow_label_change: bool = False


class RegisterParams(StageParams):
    """The `register` section of params.yaml."""

    model_name: str = Field("ftpipe-bbc-news", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    gate: GateParams = GateParams()
    retries: int = Field(4, ge=0, le=20, description="extra attempts to reach the tracking server")
    backoff_s: float = Field(1.0, ge=0.0, le=60.0, description="first wait; doubles each retry")
    batch_size: int = Field(32, ge=1, description="batch size of the served model")
    verify_rows: int = Field(64, ge=1, description="test rows the registered model must predict as evaluated")
    verify_min_agreement: float = Field(0.95, ge=0.0, le=1.0)
    await_registration_s: int = Field(300, ge=1)


class RegisterError(ValueError):
    """The inputs cannot be registered, or the registered model is broken; the message says why."""


# --------------------------------------------------------------------------- inputs


@dataclass
class Candidate:
    """What evaluate measured for the model about to be registered."""

    model_dir: Path
    metrics: dict[str, Any]
    primary_metric: str
    labels: list[str]  # id order
    test: pd.DataFrame  # id, text, label (name), pred, correct — one row per test example


def load_candidate(
    model_dir: str | Path,
    metrics_path: str | Path,
    predictions_path: str | Path,
    splits_path: str | Path,
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
    preds = pd.read_csv(predictions_path, dtype={"id": str, "label": str, "pred": str})
    missing_cols = {"id", "label", "pred", "correct"} - set(preds.columns)
    if missing_cols:
        raise RegisterError(
            f"{predictions_path}: columns {sorted(missing_cols)} are missing; rerun evaluate."
        )
    from datasets import load_from_disk

    test = load_from_disk(str(splits_path))["test"]
    names = test.features["label"].names
    test_df = test.select_columns(["id", "text", "label"]).to_pandas()
    test_df["id"] = test_df["id"].astype(str)
    test_df["label"] = [names[i] for i in test_df["label"]]
    if set(test_df["id"]) != set(preds["id"]) or len(preds) != len(test_df):
        raise RegisterError(
            f"{predictions_path} has {len(preds)} rows that do not match the {len(test_df)} test examples of "
            f"{splits_path} by id; the predictions are stale. Rerun evaluate (`dvc repro evaluate`)."
        )
    merged = test_df.merge(preds[["id", "pred", "correct"]], on="id", how="left", validate="one_to_one")
    merged["correct"] = merged["correct"].astype(int)
    return Candidate(model_dir, metrics, primary, labels, merged)


# --------------------------------------------------------------------------- hashes and lineage


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def model_hash(model_dir: str | Path) -> str:
    """sha256 over the weight files and config.json (names and contents): the model's identity."""
    model_dir = Path(model_dir)
    files = sorted({f for pat in WEIGHT_PATTERNS for f in model_dir.glob(pat)} | {model_dir / "config.json"})
    if len(files) < 2:
        raise RegisterError(f"{model_dir}: no weights (*.safetensors or pytorch_model*.bin) to register.")
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def canonical_hash(obj: Any) -> str:
    return _sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode())


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists stay values."""
    if not isinstance(d, dict):
        return {prefix: d} if prefix else {}
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def loggable_params(params: dict[str, Any]) -> dict[str, str]:
    """params.yaml flattened to strings, with anything that looks like a secret left out."""
    out = {}
    for k, v in flatten(params).items():
        if any(_SECRET_KEY.search(part) for part in k.split(".")):
            continue
        s = json.dumps(v) if isinstance(v, list | dict) else str(v)
        out[k] = s[:6000]
    return out


def _git(repo: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.rstrip() if proc.returncode == 0 else None


def dvc_lock_hashes(lock_path: str | Path) -> dict[str, str]:
    """`path -> md5` of the data/ and models/ outputs recorded in dvc.lock (empty when there is none)."""
    import yaml

    lock_path = Path(lock_path)
    if not lock_path.is_file():
        return {}
    lock = yaml.safe_load(lock_path.read_text(encoding="utf-8"))
    stages = lock.get("stages") if isinstance(lock, dict) else None
    out = {}
    for stage in (stages or {}).values():
        for o in (stage.get("outs") or []) if isinstance(stage, dict) else []:
            path = str(o.get("path", ""))
            if path.startswith(("data/", "models/")) and (o.get("md5") or o.get("hash")):
                out[path] = str(o.get("md5") or o.get("hash"))
    return out


def lineage(
    repo: Path, lock_path: str | Path, labels: list[str], params: dict[str, Any], mhash: str
) -> dict[str, str]:
    """Tags that say where the model came from, for the run and the model version."""
    import mlflow
    import torch
    import transformers

    commit = _git(repo, "rev-parse", "HEAD")
    # dirty = code or params differ from the commit; dvc.lock and reports/ are rewritten by the run itself
    status = _git(repo, "status", "--porcelain", "--", ".", ":(exclude)dvc.lock", ":(exclude)reports")
    changed = [line[3:] for line in (status or "").splitlines()]
    tags = {
        HASH_TAG: mhash,
        "git.commit": commit or "unknown",
        "git.dirty": "unknown" if status is None else str(bool(changed)).lower(),
        "labels": json.dumps(labels),
        "labels.sha256": canonical_hash({str(i): n for i, n in enumerate(labels)}),
        "params.sha256": canonical_hash(params),
        "lib.torch": torch.__version__,
        "lib.transformers": transformers.__version__,
        "lib.mlflow": mlflow.__version__,
        "lib.python": platform.python_version(),
    }
    if changed:
        tags["git.dirty_files"] = ", ".join(changed[:20]) + (
            f" and {len(changed) - 20} more" if len(changed) > 20 else ""
        )
    for path, md5 in dvc_lock_hashes(lock_path).items():
        tags[f"dvc.{path}"] = md5
    return tags


# --------------------------------------------------------------------------- the gate (pure)


def primary_score(y_true: list[str], y_pred: list[str], metric: str, labels: list[str]) -> float:
    """The primary metric from per-example predictions (macro averages over `labels`)."""
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    if metric == "accuracy":
        return float(accuracy_score(y_true, y_pred))
    average, kind = metric.split("_")
    fn = {"f1": f1_score, "precision": precision_score, "recall": recall_score}[kind]
    return float(fn(y_true, y_pred, labels=labels, average=average, zero_division=0))


def mcnemar(b: int, c: int) -> tuple[float, str]:
    """Two-sided McNemar p-value from the discordant counts b (only candidate right), c (only champion right)."""
    from scipy.stats import binomtest, chi2

    n = b + c
    if n == 0:
        return 1.0, "exact-binomial"
    if n < EXACT_BELOW:
        return float(binomtest(b, n, 0.5).pvalue), "exact-binomial"
    stat = (abs(b - c) - 1) ** 2 / n
    return float(chi2.sf(stat, 1)), "chi2-continuity"


@dataclass
class ChampionScore:
    """The current champion scored on the candidate's test split (or why it could not be)."""

    version: str
    labels: list[str] | None
    preds: list[str] | None = None  # aligned with the candidate's test rows
    error: str | None = None


@dataclass
class Check:
    name: str
    outcome: str  # pass | fail | skip
    reason: str
    value: float | None = None
    threshold: float | None = None


@dataclass
class Decision:
    promote: bool
    checks: list[Check]
    champion_before: str | None
    comparison: dict[str, Any] | None = field(default=None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision": "promote" if self.promote else "reject",
            "promote": self.promote,
            "champion_before": self.champion_before,
            "checks": [asdict(c) for c in self.checks],
            "comparison": self.comparison,
        }


def paired_comparison(cand: Candidate, champ_preds: list[str]) -> dict[str, Any]:
    """Candidate vs champion on the same rows: both primary scores, discordant counts, McNemar p-value."""
    y = cand.test["label"].tolist()
    cand_ok = cand.test["correct"].astype(bool).tolist()
    champ_ok = [p == t for p, t in zip(champ_preds, y, strict=True)]
    b = sum(1 for a, o in zip(cand_ok, champ_ok, strict=True) if a and not o)
    c = sum(1 for a, o in zip(cand_ok, champ_ok, strict=True) if o and not a)
    p, method = mcnemar(b, c)
    labels = sorted(set(cand.labels) | set(champ_preds))
    return {
        "rows": len(y),
        "candidate_primary": primary_score(y, cand.test["pred"].tolist(), cand.primary_metric, labels),
        "champion_primary": primary_score(y, champ_preds, cand.primary_metric, labels),
        "candidate_errors": cand_ok.count(False),
        "champion_errors": champ_ok.count(False),
        "only_candidate_right": b,
        "only_champion_right": c,
        "mcnemar_p": p,
        "mcnemar_method": method,
    }


def run_gate(gate: GateParams, cand: Candidate, champion: ChampionScore | None) -> Decision:
    """Every check with its outcome and reason; promote only when none fails."""
    m = cand.primary_metric
    value = float(cand.metrics["model"][m])
    base = float(cand.metrics["baseline"][m])
    checks = [
        Check(
            "floor",
            "pass" if value >= gate.min_primary else "fail",
            f"{m} {value:.4f} {'>=' if value >= gate.min_primary else '<'} floor {gate.min_primary:.4f} "
            "(register.gate.min_primary)",
            value,
            gate.min_primary,
        ),
        Check(
            "baseline",
            "pass" if value >= base - gate.baseline_tolerance else "fail",
            f"{m} {value:.4f} vs baseline {base:.4f}: {value - base:+.4f}, allowed shortfall "
            f"{gate.baseline_tolerance:.4f} (register.gate.baseline_tolerance)",
            value - base,
            -gate.baseline_tolerance,
        ),
    ]
    comparison = None
    if champion is None:
        skip = "no champion yet: the absolute checks decide"
        checks += [Check(n, "skip", skip) for n in ("labels", "improvement", "significance")]
    else:
        v = champion.version
        if champion.labels is None:
            checks.append(
                Check("labels", "fail", f"the label set of champion v{v} is unknown (no `labels` tag)")
            )
        elif set(champion.labels) == set(cand.labels):
            checks.append(Check("labels", "pass", f"same {len(cand.labels)} labels as champion v{v}"))
        else:
            diff = (
                f"added {sorted(set(cand.labels) - set(champion.labels))}, removed "
                f"{sorted(set(champion.labels) - set(cand.labels))}"
            )
            ok = gate.allow_label_change
            checks.append(
                Check(
                    "labels",
                    "pass" if ok else "fail",
                    f"labels differ from champion v{v} ({diff}); "
                    + (
                        "allowed by register.gate.allow_label_change"
                        if ok
                        else "set register.gate.allow_label_change: true if the change is intended"
                    ),
                )
            )
        if champion.preds is None:
            why = f"champion v{v} could not be scored on the test split: {champion.error}"
            checks += [Check("improvement", "fail", why), Check("significance", "fail", why)]
        else:
            comparison = paired_comparison(cand, champion.preds)
            gain = comparison["candidate_primary"] - comparison["champion_primary"]
            checks.append(
                Check(
                    "improvement",
                    "pass" if gain >= gate.min_improvement else "fail",
                    f"{m} {comparison['candidate_primary']:.4f} vs champion v{v} {comparison['champion_primary']:.4f} "
                    f"on the same {comparison['rows']} test rows: {gain:+.4f}, needed >= {gate.min_improvement:+.4f} "
                    "(register.gate.min_improvement)",
                    gain,
                    gate.min_improvement,
                )
            )
            p, b, c = (
                comparison["mcnemar_p"],
                comparison["only_candidate_right"],
                comparison["only_champion_right"],
            )
            ok = p < gate.significance and b > c
            verdict = (
                "significantly better than"
                if ok
                else "significantly worse than"
                if p < gate.significance
                else "not significantly different from"
            )
            checks.append(
                Check(
                    "significance",
                    "pass" if ok else "fail",
                    f"{verdict} champion v{v}: McNemar ({comparison['mcnemar_method']}) p = {p:.4g}, "
                    f"needed < {gate.significance} (register.gate.significance) with the candidate ahead; only "
                    f"the candidate right on {b} rows, only the champion on {c}; errors "
                    f"{comparison['candidate_errors']} vs {comparison['champion_errors']}",
                    p,
                    gate.significance,
                )
            )
    promote = all(ch.outcome != "fail" for ch in checks)
    return Decision(promote, checks, champion.version if champion else None, comparison)


def decision_tags(d: Decision) -> dict[str, str]:
    """One outcome tag and one reason tag per check, the verdict, and the McNemar numbers."""
    tags = {
        "gate.decision": "promote" if d.promote else "reject",
        "gate.champion_before": d.champion_before or "none",
        "ftpipe.gate": json.dumps(d.as_dict(), sort_keys=True),
    }
    for ch in d.checks:
        tags[f"gate.{ch.name}.outcome"] = ch.outcome
        tags[f"gate.{ch.name}.reason"] = ch.reason
    if d.comparison:
        for k in (
            "mcnemar_p",
            "only_candidate_right",
            "only_champion_right",
            "candidate_errors",
            "champion_errors",
        ):
            tags[f"gate.{k}"] = str(d.comparison[k])
    return tags


# --------------------------------------------------------------------------- the model card (pure)


def model_card(
    name: str,
    cand: Candidate,
    decision: Decision,
    tags: dict[str, str],
    run_id: str,
    truncation: dict[str, Any],
) -> str:
    """Markdown: data, labels, metrics vs baseline, gate decision, lineage, how to load it."""
    m = cand.metrics
    keys = [
        k
        for k in ("accuracy", "macro_f1", "macro_precision", "macro_recall", "weighted_f1", "ece")
        if k in m.get("model", {})
    ]

    def fmt(x: Any) -> str:
        return f"{x:.4f}" if isinstance(x, int | float) else str(x)

    rows = "\n".join(f"| {k} | {fmt(m['model'][k])} | {fmt(m['baseline'].get(k, '-'))} |" for k in keys)
    checks = "\n".join(f"| {c.name} | {c.outcome} | {c.reason} |" for c in decision.checks)
    counts = cand.test["label"].value_counts().reindex(cand.labels, fill_value=0)
    lin = "\n".join(f"- `{k}`: {v}" for k, v in sorted(tags.items()) if k != "labels")
    return f"""# {name}

Text classifier fine-tuned (all parameters) by ftpipe. Registered from MLflow run `{run_id}`.

## Use

```python
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model("models:/{name}@champion")
model.predict(pd.DataFrame({{"text": ["..."]}}))  # columns: label, score
```

Input is read like the training data: up to {truncation.get("windows", 1)} window(s) of {truncation["max_length"]} tokens (the prediction is the mean of the windows' probabilities), truncation policy `{truncation["truncation"]}`.

## Data and labels

{len(cand.labels)} labels: {", ".join(f"`{x}`" for x in cand.labels)}.
Test split: {len(cand.test)} examples ({", ".join(f"{k} {v}" for k, v in counts.items())}).

## Test metrics (primary: `{cand.primary_metric}`)

| metric | model | TF-IDF baseline |
|---|---|---|
{rows}

## Gate decision: {"promote to champion" if decision.promote else "stays challenger"}

| check | outcome | reason |
|---|---|---|
{checks}

## Lineage

{lin}
"""


# --------------------------------------------------------------------------- MLflow side


def _versions_with_hash(client: Any, name: str, mhash: str) -> list[Any]:
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return []
    return sorted((v for v in versions if v.tags.get(HASH_TAG) == mhash), key=lambda v: int(v.version))


def _experiment_id(client: Any, name: str, uri: str) -> str:
    from stages.common.registry import default_artifact_location

    exp = client.get_experiment_by_name(name)
    if exp is None:
        return client.create_experiment(name, artifact_location=default_artifact_location(uri, name))
    if exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    return exp.experiment_id


def score_champion(client: Any, name: str, version: str, texts: list[str]) -> ChampionScore:
    """Load the champion from the registry and predict the texts; a failure is recorded, not raised."""
    import mlflow

    mv = client.get_model_version(name, version)
    labels = json.loads(mv.tags["labels"]) if "labels" in mv.tags else None
    try:
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
        preds = model.predict(pd.DataFrame({"text": texts}))["label"].astype(str).tolist()
    except Exception as exc:
        return ChampionScore(version, labels, None, f"{type(exc).__name__}: {str(exc)[:300]}")
    return ChampionScore(version, labels, preds)


def _log_history(client: Any, run_id: str, history_path: Path | None) -> int:
    """Training curves as step metrics `history.<key>`; accepts Trainer log_history or {key: [values]}."""
    from mlflow.entities import Metric

    if history_path is None or not history_path.is_file():
        return 0
    hist = read_json(history_path)
    if isinstance(hist, dict) and isinstance(hist.get("log_history"), list):
        hist = hist["log_history"]
    now = int(time.time() * 1000)
    metrics = []
    if isinstance(hist, list):
        for i, rec in enumerate(r for r in hist if isinstance(r, dict)):
            step = int(rec.get("step", i))
            metrics += [
                Metric(f"history.{_metric_key(k)}", float(v), now, step)
                for k, v in rec.items()
                if k != "step" and _is_number(v)
            ]
    elif isinstance(hist, dict):
        for k, vals in hist.items():
            if isinstance(vals, list):
                metrics += [
                    Metric(f"history.{_metric_key(k)}", float(v), now, i)
                    for i, v in enumerate(vals)
                    if _is_number(v)
                ]
    for i in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[i : i + 1000])
    return len(metrics)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _metric_key(k: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", str(k))


def _requirements() -> list[str]:
    import importlib.metadata as md

    reqs = []
    for pkg in ("mlflow", "torch", "transformers", "tokenizers", "safetensors", "pandas", "numpy"):
        try:
            reqs.append(f"{pkg}=={md.version(pkg).split('+')[0]}")
        except md.PackageNotFoundError:
            pass
    return reqs


def _verify(name: str, version: str, cand: Candidate, rows: int) -> tuple[float, str | None]:
    """Load the registered version back and predict `rows` test texts; (agreement with evaluate, error)."""
    import mlflow

    sample = cand.test.head(rows)
    try:
        out = mlflow.pyfunc.load_model(f"models:/{name}/{version}").predict(
            pd.DataFrame({"text": sample["text"]})
        )
        if list(out.columns[:2]) != ["label", "score"] or len(out) != len(sample):
            return 0.0, f"unexpected output: columns {list(out.columns)}, {len(out)} rows for {len(sample)}"
    except Exception as exc:
        return 0.0, f"{type(exc).__name__}: {str(exc)[:300]}"
    return float((out["label"].astype(str).to_numpy() == sample["pred"].to_numpy()).mean()), None


def _finish(client: Any, name: str, version: str, promote: bool, reason: str) -> None:
    """Set the aliases (challenger always, champion if the gate passed), then mark the version complete."""
    from stages.common.registry import CHALLENGER, set_champion

    client.set_registered_model_alias(name, CHALLENGER, version)
    if promote:
        set_champion(client, name, version, "gate", reason)
    client.set_model_version_tag(name, version, STATUS_TAG, "complete")


def _aliases(client: Any, name: str, version: str) -> list[str]:
    return sorted(client.get_model_version(name, version).aliases)


def _existing_report(client: Any, name: str, mv: Any, uri: str, mhash: str, action: str) -> dict[str, Any]:
    from stages.common.registry import champion_version, redact_uri

    decision = json.loads(mv.tags.get("ftpipe.gate", "null"))
    return {
        "action": action,
        "name": name,
        "version": str(mv.version),
        "run_id": mv.run_id,
        "model_hash": mhash,
        "aliases": _aliases(client, name, str(mv.version)),
        "champion": champion_version(client, name),
        "promoted": bool(decision and decision["promote"]),
        "gate": decision,
        "tracking_uri": redact_uri(uri),
    }


def register(
    p: RegisterParams,
    cand: Candidate,
    uri: str,
    *,
    params: dict[str, Any],
    truncation: dict[str, Any],
    repo: Path = Path("."),
    lock_path: str | Path = "dvc.lock",
    history_path: Path | None = None,
    extra_artifacts: list[Path] | None = None,
    log: Any = None,
) -> dict[str, Any]:
    """Register `cand` unless its hash is already registered; return the registry report."""
    import logging

    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from stages.common import textclf
    from stages.common.registry import champion_version, connect, redact_uri

    log = log or logging.getLogger("ftpipe.register")
    name = p.model_name
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    client = connect(uri, p.retries, p.backoff_s)
    mhash = model_hash(cand.model_dir)
    for mv in reversed(_versions_with_hash(client, name, mhash)):
        status = mv.tags.get(STATUS_TAG)
        if status == "complete":
            log.info("model %s is already version %s of %s: nothing new", mhash[:12], mv.version, name)
            return _existing_report(client, name, mv, uri, mhash, "unchanged")
        if status == "verified":  # an earlier run stopped between verification and the aliases
            decision = json.loads(mv.tags["ftpipe.gate"])
            log.info("resuming version %s: setting its aliases", mv.version)
            _finish(client, name, str(mv.version), decision["promote"], "passed every gate check (resumed)")
            return _existing_report(
                client, name, client.get_model_version(name, mv.version), uri, mhash, "registered"
            )

    champ = champion_version(client, name)
    champion = None
    if champ is not None:
        t = time.perf_counter()
        champion = score_champion(client, name, champ, cand.test["text"].tolist())
        timings["score_champion_s"] = round(time.perf_counter() - t, 2)
    decision = run_gate(p.gate, cand, champion)
    log.info(
        "gate: %s (%s)",
        "promote" if decision.promote else "reject",
        "; ".join(f"{c.name} {c.outcome}" for c in decision.checks),
    )

    tags = lineage(repo, lock_path, cand.labels, params, mhash)
    exp_id = _experiment_id(client, name, uri)
    with mlflow.start_run(
        experiment_id=exp_id,
        run_name=f"register-{mhash[:12]}",
        tags={**tags, **decision_tags(decision), "tracking_uri": redact_uri(uri)},
    ) as run:
        run_id = run.info.run_id
        mlflow.log_params(loggable_params(params))
        metrics = {f"test.{k}": v for k, v in flatten(cand.metrics.get("model", {})).items()}
        metrics |= {f"baseline.{k}": v for k, v in flatten(cand.metrics.get("baseline", {})).items()}
        metrics |= {f"delta.{k}": v for k, v in flatten(cand.metrics.get("delta", {})).items()}
        metrics |= {f"inference.{k}": v for k, v in flatten(cand.metrics.get("inference", {})).items()}
        if decision.comparison:
            metrics |= {f"gate.{k}": v for k, v in decision.comparison.items()}
        mlflow.log_metrics({_metric_key(k): float(v) for k, v in metrics.items() if _is_number(v)})
        _log_history(client, run_id, history_path)
        for f in [*(extra_artifacts or []), history_path]:
            if f is not None and Path(f).is_file():
                mlflow.log_artifact(str(f), artifact_path="reports")
        card = model_card(name, cand, decision, tags, run_id, truncation)
        mlflow.log_text(card, "model_card.md")

        t = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            card_path = Path(tmp) / "model_card.md"
            card_path.write_text(card, encoding="utf-8")
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(Path(textclf.__file__)),
                artifacts={textclf.HF_ARTIFACT: str(cand.model_dir), "model_card": str(card_path)},
                model_config={**truncation, "batch_size": p.batch_size},
                signature=ModelSignature(
                    inputs=Schema([ColSpec("string", "text")]),
                    outputs=Schema([ColSpec("string", "label"), ColSpec("double", "score")]),
                ),
                input_example=pd.DataFrame({"text": [t[:500] for t in cand.test["text"].head(2)]}),
                pip_requirements=_requirements(),
            )
        timings["log_model_s"] = round(time.perf_counter() - t, 2)

        t = time.perf_counter()
        mv = mlflow.register_model(
            info.model_uri,
            name,
            await_registration_for=p.await_registration_s,
            tags={**tags, **decision_tags(decision), STATUS_TAG: "pending"},
        )
        version = str(mv.version)
        timings["register_s"] = round(time.perf_counter() - t, 2)
        mlflow.set_tag("ftpipe.model_version", version)
    client.update_model_version(name, version, description=card[:4900])
    if not client.get_registered_model(name).description:
        client.update_registered_model(
            name, description="ftpipe text classifier; see each version's model card."
        )
    status = client.get_model_version(name, version).status
    t = time.perf_counter()
    agreement, error = (
        (0.0, f"version status {status}, not READY")
        if status != "READY"
        else _verify(name, version, cand, p.verify_rows)
    )
    timings["verify_s"] = round(time.perf_counter() - t, 2)
    if error is None and agreement < p.verify_min_agreement:
        error = (
            f"it agrees with the evaluated predictions on {agreement:.1%} of {p.verify_rows} test rows "
            f"(register.verify_min_agreement = {p.verify_min_agreement:.0%}); the served model does not "
            "see what evaluate saw (tokenizer or truncation mismatch?)"
        )
    if error is not None:
        client.set_model_version_tag(name, version, STATUS_TAG, "broken")
        client.set_model_version_tag(name, version, "ftpipe.broken_reason", error)
        raise RegisterError(
            f"registered {name} version {version} is broken and got no alias: {error}. Fix the cause and run "
            "the register stage again; the broken version stays in the registry tagged ftpipe.status=broken."
        )
    client.set_model_version_tag(name, version, STATUS_TAG, "verified")
    client.set_model_version_tag(name, version, "ftpipe.verify_agreement", f"{agreement:.4f}")
    _finish(
        client,
        name,
        version,
        decision.promote,
        "passed every gate check" + (f" against champion v{champ}" if champ else " (first champion)"),
    )
    timings["total_s"] = round(time.perf_counter() - t0, 2)
    log.info(
        "registered %s version %s (%s) in %.1f s",
        name,
        version,
        "champion" if decision.promote else "challenger",
        timings["total_s"],
    )
    return {
        "action": "registered",
        "name": name,
        "version": version,
        "run_id": run_id,
        "model_hash": mhash,
        "aliases": _aliases(client, name, version),
        "champion": champion_version(client, name),
        "promoted": decision.promote,
        "gate": decision.as_dict(),
        "verify_agreement": agreement,
        "timings": timings,
        "tracking_uri": redact_uri(uri),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--model", default="models/model")
    ap.add_argument("--metrics", default="reports/metrics.json")
    ap.add_argument("--predictions", default="reports/predictions.csv")
    ap.add_argument("--splits", default="data/processed/splits")
    ap.add_argument("--labels", default="data/processed/labels.json")
    ap.add_argument(
        "--history", default=None, help="training history JSON, logged as step metrics if present"
    )
    ap.add_argument("--artifacts", nargs="*", default=[], help="extra report files to log if present")
    ap.add_argument("--lock", default="dvc.lock")
    ap.add_argument("--max-length", type=int, default=128, help="the tokenize stage's max_length")
    ap.add_argument("--truncation", default="head", choices=["head", "tail", "head+tail"])
    ap.add_argument("--head-fraction", type=float, default=0.25)
    ap.add_argument("--windows", type=int, default=1, help="the tokenize stage's windows")
    ap.add_argument("--out", default="reports/registry.json")
    args = ap.parse_args(argv)
    log = setup_logging("register")
    os.environ.setdefault(
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"
    )  # progress bars clutter the dvc log
    p = load_section("register", RegisterParams, args.params)

    from stages.common.registry import tracking_uri

    cand = load_candidate(args.model, args.metrics, args.predictions, args.splits, args.labels)
    report = register(
        p,
        cand,
        tracking_uri(),
        params=read_params_file(args.params),
        truncation={
            "max_length": args.max_length,
            "truncation": args.truncation,
            "head_fraction": args.head_fraction,
            "windows": args.windows,
        },
        lock_path=args.lock,
        history_path=Path(args.history) if args.history else None,
        extra_artifacts=[Path(args.metrics), Path(args.predictions), *map(Path, args.artifacts)],
        log=log,
    )
    write_json(args.out, report)
    log.info(
        "%s: %s version %s, aliases %s",
        report["action"],
        report["name"],
        report["version"],
        report["aliases"],
    )


if __name__ == "__main__":
    main()
