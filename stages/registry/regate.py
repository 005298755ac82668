"""Re-judge a registered version under today's gate params: `ftpipe gate VERSION`.

    decision, event = regate(reg, params.gate, "1", reason="floor set for BBC; none for this task")

A version rejected at registration (say by a floor that did not fit the task) is judged again from what
it recorded when it was registered: evaluate's metrics and per-row predictions (the run's reports/
artifacts), its labels tag and its data profile, against the champion of now. With no champion the floor
and the baseline decide, and nothing more is needed; with one, the champion is scored on this version's
test rows it never saw, whose texts come from the test split (`splits`, the workspace's by default) when
its ids are this version's. The verdict replaces the version's gate tags and is one history event (who,
when, why, the decision): the champion moves to it when it passes, otherwise the event is kept as not
applied. The MLflow calls go through `Registry` (stages/registry/client.py).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path

from datasets import load_from_disk

from stages.config.register import GateParams
from stages.core.csvsafe import read_csv
from stages.core.label_sets import MULTI_LABEL_TASK
from stages.gate.checks import Candidate, Decision, drift_against, require_same_labels, run_gate
from stages.registry import tags as registry_tags
from stages.registry.client import Registry
from stages.registry.history import HistoryEvent, canonical_version
from stages.registry.inputs import read_metrics
from stages.registry.register_run import decision_tags, score_champion
from stages.registry.tracking import RegistryError
from stages.reports.profile import DataProfile, as_profile


def recorded_candidate(reg: Registry, version: str) -> Candidate:
    """`version` as the gate saw it at registration: its metrics, test predictions (texts empty) and labels."""
    mv = reg.version(version)
    if not mv.run_id or registry_tags.LABELS not in mv.tags:
        raise RegistryError(
            f"version {mv.version} was not registered by ftpipe's register stage (no run or labels tag): "
            "there is nothing recorded to judge; use `ftpipe promote` after a look."
        )
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for name in ("metrics.json", "predictions.csv"):
            files[name] = Path(tmp) / name
            try:
                files[name].write_bytes(reg.artifact(mv.run_id, f"{registry_tags.REPORTS_DIR}/{name}"))
            except Exception as exc:
                raise RegistryError(
                    f"version {mv.version}'s {registry_tags.REPORTS_DIR}/{name} could not be read from its "
                    f"run ({type(exc).__name__}): register it again, or use `ftpipe promote`."
                ) from None
        metrics = read_metrics(files["metrics.json"])
        preds = read_csv(
            files["predictions.csv"], dtype={"id": str, "label": str, "pred": str, "baseline_pred": str}
        )
    test = preds[
        [c for c in ("id", "label", "pred", "correct", "baseline_pred") if c in preds.columns]
    ].copy()
    test["text"] = ""
    test["correct"] = test["correct"].astype(int)
    labels = json.loads(mv.tags[registry_tags.LABELS])
    if metrics.dump().get("task") == MULTI_LABEL_TASK:  # label sets: label, pred and baseline_pred are "a|b"
        return Candidate(
            Path("."), metrics.dump(), metrics.primary_metric, labels, test, task=MULTI_LABEL_TASK
        )
    return Candidate(Path("."), metrics.dump(), metrics.primary_metric, labels, test)


def with_texts(cand: Candidate, splits: Path | None, version: str) -> Candidate:
    """`cand` with the texts of its test rows from `splits`' test split (the same ids), for the champion."""
    why = f"scoring the champion on version {version}'s test rows needs their texts"
    if splits is None or not splits.is_dir():
        raise RegistryError(f"{why}: no test split at {splits} (`dvc pull`, or pass --splits).")
    test = load_from_disk(str(splits))["test"]
    texts = dict(zip((str(i) for i in test["id"]), test["text"], strict=True))
    missing = [i for i in cand.test["id"] if i not in texts]
    if missing:
        raise RegistryError(
            f"{why}, and the test split at {splits} is not the one it was evaluated on ({len(missing)} of its "
            f"{len(cand.test)} test ids are missing, e.g. {missing[0]}): check out the commit it was trained "
            "from and `dvc pull`, or use `ftpipe promote`."
        )
    test_df = cand.test.copy()
    test_df["text"] = [texts[i] for i in test_df["id"]]
    return replace(cand, test=test_df)


def regate(
    reg: Registry, gate: GateParams, version: str, reason: str, splits: Path | None = None
) -> tuple[Decision, HistoryEvent | None]:
    """The gate's verdict on `version` under `gate` against the champion of now, recorded; (the decision,
    the history event: None when `version` is the champion already, and nothing changes)."""
    version = canonical_version(version)
    mv = reg.version(version)
    if mv.status != "READY" or mv.tags.get(registry_tags.STATUS) not in registry_tags.USABLE_STATUSES:
        raise RegistryError(
            f"version {version} is {mv.status} and marked `{registry_tags.STATUS}="
            f"{mv.tags.get(registry_tags.STATUS)}`: it cannot serve; register the model again instead."
        )
    cand = recorded_candidate(reg, version)
    record = reg.champion_record()
    require_same_labels(gate, reg.name, cand.labels, record)
    champion = None
    if record is not None and record.version == version:
        return run_gate(gate, cand, None), None
    if record is not None:
        champion = score_champion(reg, record, with_texts(cand, splits, version))
    own = reg.record(version).profile
    parsed = as_profile(own) if own is not None else f"version {version} has no stored data profile"
    profile, note = (parsed, "") if isinstance(parsed, DataProfile) else (None, parsed)
    drift, drift_note = drift_against(record, profile, note)
    decision = run_gate(gate, cand, champion, drift, drift_note)
    reg.set_tags(version, decision_tags(decision))
    failed = [c.name for c in decision.checks if c.outcome == "fail"]
    verdict = "passed every gate check" if decision.promote else f"failed {', '.join(failed)}"
    event = reg.record_judgement(version, decision.promote, f"{reason} (re-judged: {verdict})")
    return decision, event
