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
    sections = [
        f"# {name}\n\nText classifier fine-tuned (all parameters) by ftpipe. Registered from MLflow run `{run_id}`.",
        use_section(name, truncation),
        data_section(cand, trained_on, profile_note),
        f"## Training\n\n{training_section(training)}",
        metrics_section(cand),
        gate_section(decision),
        "## Lineage\n\n" + "\n".join(f"- `{k}`: {v}" for k, v in sorted(tags.items()) if k != T.LABELS),
    ]
    return "\n\n".join(sections) + "\n"


def use_section(name: str, truncation: dict[str, Any]) -> str:
    """How to load the model, and how it reads a text (windows, tokens, truncation policy)."""
    return f"""## Use

```python
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model("models:/{name}@champion")
model.predict(pd.DataFrame({{"text": ["..."]}}))  # columns: label, score
```

Input is read like the training data: up to {truncation.get("windows", 1)} window(s) of {truncation["max_length"]} tokens (the prediction is the mean of the windows' probabilities), truncation policy `{truncation["truncation"]}`."""


def data_section(cand: Candidate, trained_on: TrainedOn | None, profile_note: str) -> str:
    """The labels, the test split per label, and what the version trained on."""
    counts = cand.test["label"].value_counts().reindex(cand.labels, fill_value=0)
    trained = (
        f"Trained and validated on {trained_on.summary()} (artifact `{T.TRAINED_ON_ARTIFACT}`): a later "
        "candidate is compared with this version only on test rows outside that record."
        if trained_on
        else "No record of the training rows."
    )
    return f"""## Data and labels

{len(cand.labels)} labels: {", ".join(f"`{x}`" for x in cand.labels)}.
Test split: {len(cand.test)} examples ({", ".join(f"{k} {v}" for k, v in counts.items())}).
{trained} {profile_note}"""


def metrics_section(cand: Candidate) -> str:
    """The test metrics the model and the TF-IDF baseline both have, side by side."""
    m = cand.metrics
    keys = [
        k
        for k in ("accuracy", "macro_f1", "macro_precision", "macro_recall", "weighted_f1", "ece")
        if k in m.get("model", {})
    ]
    rows = "\n".join(f"| {k} | {_fmt(m['model'][k])} | {_fmt(m['baseline'].get(k, '-'))} |" for k in keys)
    return f"""## Test metrics (primary: `{cand.primary_metric}`)

| metric | model | TF-IDF baseline |
|---|---|---|
{rows}"""


def gate_section(decision: Decision) -> str:
    """The gate's verdict and each of its checks with the reason."""
    checks = "\n".join(f"| {c.name} | {c.outcome} | {c.reason} |" for c in decision.checks)
    verdict = "promote to champion" if decision.promote else "stays challenger"
    return f"""## Gate decision ({decision.policy}): {verdict}

| check | outcome | reason |
|---|---|---|
{checks}"""
