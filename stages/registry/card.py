"""The model card: one markdown page per registered version (also the version's description in MLflow).

What it is for and where it came from (the base checkpoint and the data source, with their hashes),
its limits (languages, length, classes and their support), data and labels, metrics vs the baseline,
what the model trained on, the gate's checks, how to reproduce it, lineage, and how to load it.
`model_card` is pure; `gather_provenance` reads the files it needs (the model folder's
ftpipe_params.json, dvc.lock and the ingest and validate reports beside it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from stages.config.paths import PATHS
from stages.core.label_sets import MULTI_LABEL_TASK
from stages.data.trained_on import TrainedOn
from stages.gate.checks import Candidate, Decision
from stages.model.resolve import checkpoint_languages, checkpoint_sha256
from stages.registry import tags as registry_tags
from stages.reports.finetune import FinetuneReport
from stages.reports.validate import DataProfileReport


def _fmt(x: object) -> str:
    return f"{x:.4f}" if isinstance(x, int | float) and not isinstance(x, bool) else str(x)


def training_section(report: FinetuneReport | None) -> str:
    """One paragraph from the finetune report: where and in which precision it trained, and why."""
    if report is None:
        return "No finetune report was given to the register stage."
    processes = report.num_processes or 1
    where = f"`{report.device}`, `{report.precision}`"
    if processes > 1:
        where += f", {processes} processes"
    text = f"Fine-tuned on {where}"
    if report.precision_reason:
        text += f" ({report.precision_reason})"
    text += f"; best epoch {report.best_epoch} of {report.epochs_run} (validation `{report.best_metric}`)"
    if report.train_samples_per_s is not None:
        text += f", {report.train_samples_per_s} training samples/s"
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
    training: FinetuneReport | None = None,
    provenance: Provenance | None = None,
) -> str:
    """Markdown: the report page's link, intended use, sources, limits, use, data and labels, how it was trained, test metrics vs
    baseline, gate decision, how to reproduce, lineage.

    `training` is the finetune stage's report (reports/finetune.json): device, precision and why;
    `provenance` (`gather_provenance`) the base checkpoint, the data source and the validate figures."""
    prov = provenance or Provenance()
    sections = [
        f"# {name}\n\nText classifier fine-tuned (all parameters) by ftpipe. Registered from MLflow run `{run_id}`.",
        report_page_section(run_id),
        intended_use_section(cand),
        sources_section(prov),
        limits_section(cand, prov, truncation),
        use_section(name, truncation, promoted=decision.promote),
        data_section(cand, trained_on, profile_note),
        f"## Training\n\n{training_section(training)}",
        metrics_section(cand),
        *([thresholds_section(cand, prov)] if cand.task == MULTI_LABEL_TASK else []),
        gate_section(decision),
        reproduce_section(tags, prov),
        "## Lineage\n\n"
        + "\n".join(f"- `{k}`: {v}" for k, v in sorted(tags.items()) if k != registry_tags.LABELS),
    ]
    return "\n\n".join(sections) + "\n"


def report_page_section(run_id: str) -> str:
    """Where the run's page is: an artifact of the registration run, and the register stage's output."""
    page = registry_tags.REPORT_PAGE_ARTIFACT
    return (
        f"## Report\n\n[{page}](runs:/{run_id}/{page}) (artifact `{page}` of run `{run_id}`; "
        "`reports/report.html` in the workspace that registered it): one offline page with the test metrics "
        "against the TF-IDF baseline and the champion, the confusion matrix, per-class figures, the "
        "calibration curve, the drift figures and the gate's checks."
    )


def use_section(name: str, truncation: dict[str, Any], promoted: bool = True) -> str:
    """How to load the model (by the alias it gets at registration), and how it reads a text."""
    alias = registry_tags.CHAMPION if promoted else registry_tags.CHALLENGER
    note = (
        ""
        if promoted
        else f"\n\nThe gate did not promote this version, so `@{registry_tags.CHAMPION}` is not it: "
        f"`@{registry_tags.CHALLENGER}` is the newest version (or load it by number, `models:/{name}/N`); "
        "`ftpipe gate N` judges it again, `ftpipe promote N` makes it champion."
    )
    return f"""## Use

```python
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model("models:/{name}@{alias}")
model.predict(pd.DataFrame({{"text": ["..."]}}))  # columns: label, score
```

Input is read like the training data: up to {truncation.get("windows", 1)} window(s) of {truncation["max_length"]} tokens (the prediction is the mean of the windows' probabilities), truncation policy `{truncation["truncation"]}`.{note}"""


DESCRIPTION_MAX = 4900  # under the 5,000 characters a version description holds in MLflow's stores
CONTINUED = f"(continued in {registry_tags.MODEL_CARD_ARTIFACT})"


def description(card: str, most: int = DESCRIPTION_MAX) -> str:
    """The card as a version description: whole when it fits, else cut at a line end and marked."""
    if len(card) <= most:
        return card
    head = card[: most - len(CONTINUED) - 2]
    cut = head.rfind("\n")
    head = head[:cut] if cut > 0 else head.rsplit(" ", 1)[0]
    return f"{head.rstrip()}\n\n{CONTINUED}"


def data_section(cand: Candidate, trained_on: TrainedOn | None, profile_note: str) -> str:
    """The labels, the test split per label, and what the version trained on."""
    labels = cand.test["label"]
    if cand.task == MULTI_LABEL_TASK:  # label sets: the test rows carrying each label
        labels = labels.astype(str).str.split("|").explode()
    counts = labels.value_counts().reindex(cand.labels, fill_value=0)
    trained = (
        f"Trained and validated on {trained_on.summary()} "
        f"(artifact `{registry_tags.TRAINED_ON_ARTIFACT}`): a later candidate is compared with this version "
        "only on test rows outside that record."
        if trained_on
        else "No record of the training rows."
    )
    return f"""## Data and labels

{len(cand.labels)} labels: {", ".join(f"`{x}`" for x in cand.labels)}.
Test split: {len(cand.test)} examples ({", ".join(f"{k} {v}" for k, v in counts.items())}).
{trained} {profile_note}"""


SET_CARD_METRICS = (  # label sets: the card's rows (subset accuracy is `accuracy`)
    "micro_f1",
    "micro_precision",
    "micro_recall",
    "macro_f1",
    "weighted_f1",
    "subset_accuracy",
    "hamming_loss",
    "label_cardinality",
    "ece",
)


def metrics_section(cand: Candidate) -> str:
    """The test metrics the model and the TF-IDF baseline both have, side by side."""
    m = cand.metrics
    names = (
        SET_CARD_METRICS
        if cand.task == MULTI_LABEL_TASK
        else ("accuracy", "macro_f1", "macro_precision", "macro_recall", "weighted_f1", "ece")
    )
    keys = [k for k in names if k in m.get("model", {})]
    rows = "\n".join(f"| {k} | {_fmt(m['model'][k])} | {_fmt(m['baseline'].get(k, '-'))} |" for k in keys)
    return f"""## Test metrics (primary: `{cand.primary_metric}`)

| metric | model | TF-IDF baseline |
|---|---|---|
{rows}"""


def thresholds_section(cand: Candidate, prov: Provenance) -> str:
    """Label sets: each label's decision threshold (config.json `ftpipe_thresholds`, tuned on validation)."""
    found = prov.thresholds or dict(cand.metrics.get("model", {}).get("thresholds") or {})
    source = (
        "config.json `ftpipe_thresholds`"
        if prov.thresholds
        else "reports/metrics.json (the model folder's config.json has no `ftpipe_thresholds`)"
        if found
        else "none recorded: 0.5 for every label"
    )
    rows = "\n".join(f"| {x} | {_fmt(found[x]) if x in found else '0.5 (default)'} |" for x in cand.labels)
    return f"""## Decision thresholds

A text gets every label whose probability reaches its threshold (tuned per label on the validation split
to maximise that label's F1); when none does, the one label with the highest probability / threshold.
Source: {source}.

| label | threshold |
|---|---|
{rows}"""


def gate_section(decision: Decision) -> str:
    """The gate's verdict and each of its checks with the reason."""
    checks = "\n".join(f"| {c.name} | {c.outcome} | {c.reason} |" for c in decision.checks)
    verdict = "promote to champion" if decision.promote else "stays challenger"
    return f"""## Gate decision ({decision.policy}): {verdict}

| check | outcome | reason |
|---|---|---|
{checks}"""


# --------------------------------------------------------------------------- provenance and limits


@dataclass(frozen=True)
class Provenance:
    """Where a model came from and what its data looked like, as the card states it (empty: unknown)."""

    base_model: str = ""  # the `tokenize.model` reference finetune trained from
    base_source: str = ""  # what it resolved to: package==version, hub id or folder
    base_sha256: str = ""  # weights + config.json of the base checkpoint
    base_hash_note: str = ""  # where the hash comes from
    languages: tuple[str, ...] = ()  # the base checkpoint's own card `language:`
    tokenizer: str = ""  # class, casing and vocabulary size of the saved tokenizer
    data_source: str = ""  # `ingest.source`
    data_sha256: str = ""  # sha256 of the ingested source (reports/ingest.json)
    data_rows: int | None = None
    data_hashes: dict[str, str] = field(default_factory=dict)  # dvc.lock: data/external, data/raw
    validate: dict[str, Any] = field(default_factory=dict)  # reports/data_profile.json `headline`
    class_rows: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> class -> rows
    thresholds: dict[str, float] = field(default_factory=dict)  # label sets: config.json ftpipe_thresholds
    notes: tuple[str, ...] = ()  # inputs that were missing, said on the card


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object file; {} when it is missing, unreadable or not an object."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _profile_report(path: Path) -> DataProfileReport | None:
    """validate's reports/data_profile.json; None when it is missing, unreadable or not validate's."""
    doc = _read_json(path)
    if not doc:
        return None
    try:
        return DataProfileReport.model_validate(doc)
    except ValidationError:
        return None


def _ingest_hashes(lock_path: Path) -> dict[str, str]:
    """dvc.lock's md5 of the ingest stage's data input (data/external) and output (data/raw)."""
    try:
        lock = yaml.safe_load(lock_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    stage = ((lock or {}).get("stages") or {}).get("ingest") or {}
    entries = [*(stage.get("deps") or []), *(stage.get("outs") or [])]
    return {
        str(e["path"]): str(e.get("md5") or e.get("hash"))
        for e in entries
        if str(e.get("path", "")).startswith("data/") and (e.get("md5") or e.get("hash"))
    }


def _tokenizer(model_dir: Path) -> str:
    """`BertTokenizer`, lowercased, 30522 tokens: what the saved tokenizer reads."""
    conf = _read_json(model_dir / "tokenizer_config.json")
    vocab = (_read_json(model_dir / "tokenizer.json").get("model") or {}).get("vocab")
    parts = [f"`{conf.get('tokenizer_class', 'unknown class')}`"]
    if conf.get("do_lower_case") is not None:
        parts.append("lowercased" if conf["do_lower_case"] else "cased")
    if vocab:
        parts.append(f"a {len(vocab)}-token vocabulary")
    return ", ".join(parts)


def gather_provenance(params: dict[str, Any], lock_path: str | Path, model_dir: str | Path) -> Provenance:
    """The card's sources and limits from the files of the run: the model folder's ftpipe_params.json
    (the base checkpoint finetune used), dvc.lock, and the ingest and validate reports beside it."""
    root, model_dir = Path(lock_path).parent, Path(model_dir)
    notes = []
    resolved = _read_json(model_dir / "ftpipe_params.json")
    base: dict[str, Any] = resolved["base_model"] if isinstance(resolved.get("base_model"), dict) else {}
    ref = str(base.get("model") or (params.get("tokenize") or {}).get("model") or "")
    if not base:
        notes.append(f"{model_dir}/ftpipe_params.json names no base model: `tokenize.model` is quoted")
    sha = str(base.get("sha256") or "")
    hash_note = "recorded by finetune" if sha else ""
    if not sha and ref:
        sha = checkpoint_sha256(ref) or ""
        hash_note = (
            "computed at registration from the installed copy" if sha else "a hub id: no local copy to hash"
        )
    ingest_path = root / str(PATHS["ingest"]["report"])
    ingest = _read_json(ingest_path)
    if not ingest:
        notes.append(f"no ingest report at {ingest_path}")
    validate_path = root / str(PATHS["validate"]["report"])
    report = _profile_report(validate_path)
    if report is None:
        notes.append(f"no validate report at {validate_path}")
    splits = (report.splits if report else None) or {}
    return Provenance(
        base_model=ref,
        base_source=str(base.get("source") or ""),
        base_sha256=sha,
        base_hash_note=hash_note,
        languages=tuple(checkpoint_languages(ref)) if ref else (),
        tokenizer=_tokenizer(model_dir),
        data_source=str(ingest.get("source") or (params.get("ingest") or {}).get("source") or ""),
        data_sha256=str(ingest.get("source_sha256") or ""),
        data_rows=ingest.get("rows"),
        data_hashes=_ingest_hashes(Path(lock_path)),
        validate=report.headline.dump() if report else {},
        class_rows={s: {c: v.rows for c, v in part.classes.items()} for s, part in splits.items()},
        notes=tuple(notes),
        thresholds=_thresholds(model_dir),
    )


def _thresholds(model_dir: Path) -> dict[str, float]:
    """The per-label decision thresholds finetune saved in config.json (`ftpipe_thresholds`); {} if none."""
    found = _read_json(model_dir / "config.json").get("ftpipe_thresholds")
    if not isinstance(found, dict):
        return {}
    return {str(k): float(v) for k, v in found.items() if isinstance(v, int | float)}


def intended_use_section(cand: Candidate) -> str:
    """What the model is for: one label of the fixed set per text, and what it cannot say."""
    if cand.task == MULTI_LABEL_TASK:
        return f"""## Intended use

Text classification with label sets: each text gets one or more of {len(cand.labels)} labels ({", ".join(f"`{x}`" for x in cand.labels)}; `label.labels` in params.yaml, the label map data/processed/labels.json), each label with its own sigmoid probability (the `p_<label>` columns) and decision threshold (see Decision thresholds).
For texts like the training data (see Limitations). Not for texts that carry none of these labels (every text gets at least one), texts in another language than it was trained on, or decisions about people without review."""
    return f"""## Intended use

Text classification: each text gets exactly one of {len(cand.labels)} labels ({", ".join(f"`{x}`" for x in cand.labels)}; `label.labels` in params.yaml, the label map data/processed/labels.json) with its softmax score.
For texts like the training data (see Limitations). Not for texts that belong to none of these labels (there is no "other": the model always answers one of them), texts in another language than it was trained on, or decisions about people without review."""


def sources_section(prov: Provenance) -> str:
    """The base checkpoint and the data source, each with its hash."""
    if prov.base_model:
        same = prov.base_source in ("", prov.base_model)
        base = f"`{prov.base_model}`" + ("" if same else f" ({prov.base_source})")
        base += (
            f", sha256 `{prov.base_sha256}` ({prov.base_hash_note})"
            if prov.base_sha256
            else f" ({prov.base_hash_note or 'no hash'})"
        )
    else:
        base = "unknown (no ftpipe_params.json in the model folder)"
    data = f"`{prov.data_source}`" if prov.data_source else "unknown (no ingest report)"
    if prov.data_sha256:
        data += f", sha256 of the ingested source `{prov.data_sha256}`"
    if prov.data_rows is not None:
        data += f", {prov.data_rows} rows ingested"
    lines = [f"- Base checkpoint (`tokenize.model`): {base}.", f"- Data source (`ingest.source`): {data}."]
    lines += [f"- DVC hash of `{p}` (dvc.lock): `{h}`" for p, h in sorted(prov.data_hashes.items())]
    lines += [f"- Note: {n}." for n in prov.notes]
    return "## Sources\n\n" + "\n".join(lines)


def _share(x: object) -> str:
    return f"{float(x):.2%}" if isinstance(x, int | float) else "not measured"


def limits_section(cand: Candidate, prov: Provenance, truncation: dict[str, Any]) -> str:
    """Languages the tokenizer reads, the length it reads, the classes and their support."""
    v = prov.validate
    langs = (
        f"the base checkpoint's card lists {', '.join(f'`{x}`' for x in prov.languages)}"
        if prov.languages
        else "the base checkpoint's card states no language"
    )
    budget = f"{truncation.get('windows', 1)} window(s) of {truncation['max_length']} tokens"
    lines = [
        f"- Language: {langs}; the tokenizer is {prov.tokenizer or 'unknown'}. "
        f"On the training split {_share(v.get('unk_share'))} of the tokens were unknown to it (validate, "
        "`validate.max_unk_share` bounds it per class and split): a high share means a language or script "
        "the tokenizer does not cover, and labels of such texts are not to be trusted.",
        f"- Length: a text is read up to {budget} (`tokenize.windows`, `tokenize.max_length`); the rest "
        f"is cut by `tokenize.truncation` = `{truncation['truncation']}`. {_share(v.get('truncated_share'))} "
        f"of the training texts were cut (median {v.get('median_tokens', '?')} tokens).",
    ]
    splits = [s for s in ("train", "validation", "test") if s in prov.class_rows]
    if splits:
        rows = "\n".join(
            f"| {c} | " + " | ".join(str(prov.class_rows[s].get(c, 0)) for s in splits) + " |"
            for c in cand.labels
        )
        lines.append(
            "- Classes and their support (rows per split; a class with few rows is learnt and measured "
            f"less well):\n\n| class | {' | '.join(splits)} |\n|---|{'---|' * len(splits)}\n{rows}"
        )
    return "## Limitations\n\n" + "\n".join(lines)


def reproduce_section(tags: dict[str, str], prov: Provenance) -> str:
    """The commit, the commands and the params that make this model again."""
    commit = tags.get(registry_tags.GIT_COMMIT, "unknown")
    dirty = tags.get(registry_tags.GIT_DIRTY) == "true"
    warn = (
        "\n\nThe working tree had uncommitted changes "
        f"({tags.get(registry_tags.GIT_DIRTY_FILES, 'files not listed')}): the commit alone does not make "
        "this model."
        if dirty
        else ""
    )
    return f"""## How to reproduce

```sh
git checkout {commit}
dvc pull        # the data and model at their dvc.lock hashes (`make pull`), where a remote has them
dvc repro       # or `ftpipe run`: the same stages through the Prefect flow
```

The params are params.yaml at that commit (sha256 `{tags.get(registry_tags.PARAMS_SHA, "unknown")}`), also logged with the MLflow run; the finetune stage's resolved params sit beside the weights (`ftpipe_params.json`). With the same data, params, library versions (`lib.*` below), hardware and precision (see Training) the run is expected to give the same metrics.{warn}"""
