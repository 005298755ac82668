"""The model card: one markdown page per registered version (also the version's description in MLflow).

Pure: data, labels, metrics vs the baseline, what the model trained on, the gate's checks, lineage, and
how to load it.
"""

from __future__ import annotations

from typing import Any

from stages.gate.checks import Candidate, Decision
from stages.registry import tags as T
from stages.registry.lineage import TrainedOn


def _fmt(x: Any) -> str:
    return f"{x:.4f}" if isinstance(x, int | float) and not isinstance(x, bool) else str(x)


def training_section(report: dict[str, Any] | None) -> str:
    """One paragraph from the finetune report: where and in which precision it trained, and why."""
    if not report:
        return "No finetune report was given to the register stage."
    processes = int(report.get("num_processes", 1) or 1)
    where = f"`{report.get('device', '?')}`, `{report.get('precision', '?')}`"
    if processes > 1:
        where += f", {processes} processes"
    text = f"Fine-tuned on {where}"
    if report.get("precision_reason"):
        text += f" ({report['precision_reason']})"
    if report.get("best_epoch") is not None:
        text += (
            f"; best epoch {report['best_epoch']} of {report.get('epochs_run', '?')} "
            f"(validation `{report.get('best_metric', '?')}`)"
        )
    if report.get("train_samples_per_s") is not None:
        text += f", {report['train_samples_per_s']} training samples/s"
    return text + ". The finetune report is logged with the run as `reports/finetune.json`."


def model_card(
    name: str,
    cand: Candidate,
    decision: Decision,
    tags: dict[str, str],
    run_id: str,
    truncation: dict[str, Any],
    trained_on: TrainedOn | None = None,
    profile_note: str = "",
    training: dict[str, Any] | None = None,
) -> str:
    """Markdown: use, data and labels, how it was trained, test metrics vs baseline, gate decision, lineage.

    `training` is the finetune stage's report (reports/finetune.json): device, precision and why."""
    m = cand.metrics
    keys = [
        k
        for k in ("accuracy", "macro_f1", "macro_precision", "macro_recall", "weighted_f1", "ece")
        if k in m.get("model", {})
    ]
    rows = "\n".join(f"| {k} | {_fmt(m['model'][k])} | {_fmt(m['baseline'].get(k, '-'))} |" for k in keys)
    checks = "\n".join(f"| {c.name} | {c.outcome} | {c.reason} |" for c in decision.checks)
    counts = cand.test["label"].value_counts().reindex(cand.labels, fill_value=0)
    lin = "\n".join(f"- `{k}`: {v}" for k, v in sorted(tags.items()) if k != T.LABELS)
    trained = (
        f"Trained and validated on {trained_on.summary()} (artifact `{T.TRAINED_ON_ARTIFACT}`): a later "
        "candidate is compared with this version only on test rows outside that record."
        if trained_on
        else "No record of the training rows."
    )
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
{trained} {profile_note}

## Training

{training_section(training)}

## Test metrics (primary: `{cand.primary_metric}`)

| metric | model | TF-IDF baseline |
|---|---|---|
{rows}

## Gate decision ({decision.policy}): {"promote to champion" if decision.promote else "stays challenger"}

| check | outcome | reason |
|---|---|---|
{checks}

## Lineage

{lin}
"""
