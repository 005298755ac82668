"""The one module that talks to the MLflow registry: `Registry` and the champion history it keeps.

    reg = Registry.connect(tracking_uri(), "ftpipe-bbc-news")
    reg.champion()                 # "3" or None
    reg.champion_record()          # its labels, trained-on record and data profile (for the gate and drift)
    reg.promote("4", reason="hand-checked")

Used by the register stage, the `ftpipe promote | rollback | history` commands (flows/commands/registry.py), batch
prediction (flows/commands/predict/command.py) and the retrain flow; none of them calls MlflowClient directly.

- Where the store lives and how long ftpipe waits for it (`tracking_uri`, `RetryPolicy`, `with_retries`,
  `TrackingUnavailable`): stages/registry/tracking.py. Every request made here goes through it.
- What is recorded of a version's files and checked before it loads (`served_manifest`, `check_logged`,
  `load_verified`, `load_uri_verified`): stages/registry/integrity.py.
- Every change of the `champion` alias (by the gate, `promote` or `rollback`) records one event in the
  registered model's tags (`ftpipe.history.000001`, ...: JSON with who, when, action, from, to, why),
  so the audit trail lives and dies with the registry. The event is written as an intent before the
  alias moves and confirmed after; `reconcile_history` settles an intent whose process was killed. The
  history's pure rules (events, replay, rollback target): stages/registry/history.py.
- Reading versions, aliases and a version's record (labels, trained-on record, data profile): the base
  class `RegistryReader`, stages/registry/reader.py (the drift stage needs only that).
- Tag and artifact names come from stages/registry/tags.py.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import mlflow.artifacts
import pandas as pd
from mlflow.entities import Metric
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

from stages.core.io import DiskFull, as_disk_full
from stages.core.redact import redact_uri
from stages.data.trained_on import TrainedOn
from stages.registry import tags as registry_tags
from stages.registry.history import (
    ALIAS_NAME,
    HistoryEvent,
    canonical_version,
    check_promotable,
    history_from_tags,
    history_keys,
    make_event,
    missing_alias_message,
    next_history_key,
    read_event,
    rollback_target,
)
from stages.registry.history import champion_stack as champion_stack  # re-export (flows' tests)
from stages.registry.integrity import (
    check_logged,
    download_verified,
    downloaded_manifest,
    load_verified,
    registered_code,
    served_manifest,
)
from stages.registry.reader import RegistryReader
from stages.registry.smoke import SmokeRecord
from stages.registry.tracking import (
    RegistryError,
    default_artifact_location,
    describe_failure,
    mlflow_http_policy,
    temporary_env,
    use_store,
)
from stages.reports.profile import DataProfile
from stages.serving import manifest, textclf

if TYPE_CHECKING:  # mlflow.pyfunc is imported by MLflow when a model is loaded
    from mlflow.pyfunc import PyFuncModel

# kept as names here too: callers say `registry.CHAMPION`
CHAMPION = registry_tags.CHAMPION
CHALLENGER = registry_tags.CHALLENGER
HISTORY_PREFIX = registry_tags.HISTORY_PREFIX
RUN_TAG_MAX = 8000
PYFUNC_REQUIREMENTS = ("mlflow", "torch", "transformers", "tokenizers", "safetensors", "pandas", "numpy")

# how the gate scores a champion, whatever it serves with: as evaluate scores the candidate
FP32_CONFIG = {"quantize": "none", "precision": "fp32"}


# --------------------------------------------------------------------------- the Registry


@dataclass
class Registration:
    """Everything one registration logs: run tags, params, metrics, artifacts, and the model itself."""

    run_name: str
    tags: dict[str, str]  # on the run and on the version
    params: dict[str, str]
    metrics: dict[str, float]
    step_metrics: list[tuple[str, float, int]]  # (key, value, step): training curves
    files: list[Path]  # logged under reports/
    card: Callable[[str], str]  # run id -> the model card (markdown; also the version's description)
    trained_on: TrainedOn | None  # None: the version gets no record (a later candidate compares on all rows)
    profile: DataProfile | None  # validate's; logged with the keys in the order of its file
    model_dir: Path
    model_config: dict[str, Any]  # the served model's windowing, truncation and batch size
    example_texts: list[str]
    await_registration_s: int = 300
    label_sets: bool = False  # label.task multi_label: the signature declares a p_<label> column per label
    labels: list[str] = field(default_factory=list)  # id order


class Registry(RegistryReader):
    """One registered model in one MLflow store: versions, aliases, status and lineage tags, history."""

    # ------------------------------------------------------------------ versions and aliases

    def versions_with_hash(self, mhash: str) -> list[ModelVersion]:
        """The versions tagged with model hash `mhash`, oldest first."""
        try:
            found = self._call(lambda: self.client.search_model_versions(f"name = '{self.name}'"))
        except MlflowException:
            return []
        return sorted(
            (v for v in found if v.tags.get(registry_tags.MODEL_HASH) == mhash), key=lambda v: int(v.version)
        )

    def versions(self) -> list[ModelVersion]:
        """Every version of the model, oldest first (none when the model is not registered yet)."""
        try:
            found = self._call(lambda: self.client.search_model_versions(f"name = '{self.name}'"))
        except MlflowException:
            return []
        return sorted(found, key=lambda v: int(v.version))

    def run_metrics(self, run_id: str) -> dict[str, float]:
        """The metrics of the run that registered a version (`test.*`, `baseline.*`); {} when it is gone."""
        try:
            return dict(self._call(lambda: self.client.get_run(run_id)).data.metrics)
        except MlflowException:
            return {}

    def version_of_run(self, run_id: str) -> ModelVersion | None:
        """The version registered from run `run_id`, if any (so a retried registration finds its own)."""
        try:
            found = self.client.search_model_versions(f"name = '{self.name}' and run_id = '{run_id}'")
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                return None
            raise
        return min(found, key=lambda v: int(v.version)) if found else None

    def aliases(self, version: str) -> list[str]:
        return sorted(self.version(version).aliases)

    def resolve(self, ref: str) -> str:
        """The version that `ref` names: an alias (`champion`, `challenger`) or a version number in any
        form `canonical_version` reads; RegistryError naming the versions and aliases there are."""
        if ALIAS_NAME.fullmatch(ref.strip()):
            found = self.alias(ref.strip())
            if found is None:
                raise RegistryError(self.missing_alias(ref.strip()))
            return found
        return canonical_version(ref)

    def missing_alias(self, alias: str) -> str:
        """Why `@alias` cannot be used: the versions there are and their aliases (`missing_alias_message`)."""
        by_version: dict[str, list[str]] = {
            str(mv.version): sorted(mv.aliases or ()) for mv in self.versions()
        }
        try:
            pointed = dict(self._call(lambda: self.client.get_registered_model(self.name)).aliases or {})
        except MlflowException:
            pointed = {}
        for a, v in pointed.items():  # a search result may leave a version's aliases out
            if str(v) in by_version and a not in by_version[str(v)]:
                by_version[str(v)] = sorted([*by_version[str(v)], a])
        return missing_alias_message(self.name, alias, by_version)

    # ------------------------------------------------------------------ status and tags

    def set_tags(self, version: str, tags: dict[str, str]) -> None:
        version = canonical_version(version)
        for k, v in tags.items():

            def set_tag(k: str = k, v: str = v) -> None:
                self.client.set_model_version_tag(self.name, version, k, v)

            self._call(set_tag)

    def set_status(self, version: str, status: str, **extra: str) -> None:
        """`ftpipe.status` (pending | verified | complete | broken) plus any extra tags."""
        self.set_tags(version, {**extra, registry_tags.STATUS: status})

    def mark_broken(self, version: str, reason: str) -> None:
        self.set_status(version, registry_tags.BROKEN, **{registry_tags.BROKEN_REASON: reason})

    # ------------------------------------------------------------------ models

    def load(self, version: str, model_config: dict[str, Any] | None = None) -> PyFuncModel:
        """Version `version`, loaded only once its files match the manifest recorded at registration;
        `model_config` overrides keys of its logged model_config (e.g. `{"quantize": "none"}`)."""
        use_store(self.uri)
        return load_verified(self.version(version), self.uri, self.policy, model_config)

    def fetch(self, version: str, dest: Path) -> int:
        """A checked copy of `version` at `dest` (which must not exist), to serve; the number of files.
        Written beside `dest` and renamed into place, so a refused download leaves nothing; a full disk
        raises DiskFull naming `dest`, the free space and the version's size."""
        if dest.exists():
            raise RegistryError(f"{dest} already exists; name a new folder for the copy.")
        mv = self.version(version)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.tmp-") as tmp:
                (Path(tmp) / "model").mkdir()
                Path(download_verified(mv, self.uri, Path(tmp) / "model", self.policy)).rename(dest)
        except OSError as exc:  # a full disk: one line naming `dest` (the temporary folder is gone)
            full = as_disk_full(exc)
            if full is None:
                raise
            raise DiskFull(dest, full, full.needed) from None
        return sum(1 for f in dest.rglob("*") if f.is_file())

    def predict(self, version: str, texts: list[str]) -> list[str]:
        """Labels `version` predicts for `texts` (loads it from the registry; errors are raised)."""
        if not texts:
            return []
        # in fp32 whatever the version serves with (register.quantize): the gate pairs these with the
        # candidate's evaluate predictions, which are fp32
        out: pd.DataFrame = self.load(version, FP32_CONFIG).predict(pd.DataFrame({"text": texts}))
        labels: list[str] = out["label"].astype(str).tolist()
        return labels

    def verify(self, version: str, texts: list[str], expected: list[str]) -> tuple[float, str | None]:
        """Load `version` back and predict `texts`: (agreement with `expected`, error or None). What it
        predicted (each class's probability) is recorded as the version's smoke set (stages/registry/smoke.py)."""
        try:
            loaded = self.load(version)
            out: pd.DataFrame = loaded.predict(pd.DataFrame({"text": texts}), params={"probabilities": True})
            if list(out.columns[:2]) != ["label", "score"] or len(out) != len(texts):
                return (
                    0.0,
                    f"unexpected output: columns {list(out.columns)}, {len(out)} rows for {len(texts)}",
                )
            try:
                smoke: SmokeRecord | None = SmokeRecord.from_output(texts, out, set_thresholds(loaded))
            except ValueError:  # a model without per-class probabilities: the server's fixed-text rule
                smoke = None
            if smoke is not None:
                self.record_smoke(version, smoke)
        except Exception as exc:
            return 0.0, describe_failure(exc)
        got = out["label"].astype(str).tolist()
        return sum(a == b for a, b in zip(got, expected, strict=True)) / max(1, len(texts)), None

    def record_smoke(self, version: str, record: SmokeRecord) -> None:
        """`record` as the run artifact smoke.json of `version`, named by its tag `ftpipe.smoke`."""
        run_id = self.version(version).run_id
        if not run_id:
            return
        text = record.to_json()
        self._call(lambda: self.client.log_text(run_id, text, registry_tags.SMOKE_ARTIFACT))
        self.set_tags(version, {registry_tags.SMOKE: registry_tags.SMOKE_ARTIFACT})

    # ------------------------------------------------------------------ registering

    def _experiment_id(self) -> str:
        def get_or_create() -> str:  # retried whole: a create whose answer was lost is found next time
            exp = self.client.get_experiment_by_name(self.name)
            if exp is None:
                loc = default_artifact_location(self.uri, self.name)
                return self.client.create_experiment(self.name, artifact_location=loc)
            if exp.lifecycle_stage == "deleted":
                self.client.restore_experiment(exp.experiment_id)
            return exp.experiment_id

        return self._call(get_or_create)

    def log_registration(self, reg: Registration, timings: dict[str, float] | None = None) -> tuple[str, str]:
        """One MLflow run with everything in `reg`, and a new model version (status pending); (run_id, version)."""
        timings = {} if timings is None else timings
        use_store(self.uri)
        tags = {**reg.tags, **_record_tags(reg), registry_tags.TRACKING_URI: redact_uri(self.uri)}
        # run tags hold 8000 characters (MLflow cuts longer ones); version tags hold 100,000
        run_tags = {k: v for k, v in tags.items() if len(v) <= RUN_TAG_MAX}
        exp_id = self._experiment_id()
        # each step is one call under the policy; a step retried after a lost answer repeats harmlessly
        # (same params, artifacts overwritten; a second run or logged model is an orphan, never a version)
        run = self._call(lambda: mlflow.start_run(experiment_id=exp_id, run_name=reg.run_name, tags=run_tags))
        run_id, ok = run.info.run_id, False
        try:
            self._log_run_data(run_id, reg, tags)
            card = reg.card(run_id)
            self._call(lambda: self.client.log_text(run_id, card, registry_tags.MODEL_CARD_ARTIFACT))
            with tempfile.TemporaryDirectory() as tmp:
                self._log_records(run_id, reg, Path(tmp))
                info, served = self._log_model(reg, card, Path(tmp), timings)
            found = self._call(lambda: downloaded_manifest(info.model_uri))
            tags[registry_tags.MANIFEST] = manifest.dumps(
                check_logged(found, served, reg.model_dir.name, info.model_uri)
            )
            version = self._register_version(run_id, info.model_uri, tags, reg.await_registration_s, timings)
            self._call(lambda: self.client.set_tag(run_id, registry_tags.MODEL_VERSION, version))
            self._call(lambda: self.client.set_terminated(run_id, "FINISHED"))
            ok = True
        finally:
            _leave_run("FINISHED" if ok else "FAILED", self.uri)
        self.describe(version, card)
        return run_id, version

    def _log_run_data(self, run_id: str, reg: Registration, tags: dict[str, str]) -> None:
        """The run's gate decision (gate.json), params, metrics (training curves by step) and report files."""
        if registry_tags.GATE_JSON in tags:
            self._call(
                lambda: self.client.log_text(
                    run_id, tags[registry_tags.GATE_JSON], registry_tags.GATE_ARTIFACT
                )
            )
        self._call(lambda: mlflow.log_params(reg.params))
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in reg.metrics.items()]
        metrics += [Metric(k, v, now, step) for k, v, step in reg.step_metrics]
        for i in range(0, len(metrics), 1000):

            def log_batch(i: int = i) -> None:
                self.client.log_batch(run_id, metrics=metrics[i : i + 1000])

            self._call(log_batch)
        for f in reg.files:

            def log_file(f: Path = f) -> None:
                self.client.log_artifact(run_id, str(f), artifact_path=registry_tags.REPORTS_DIR)

            self._call(log_file)

    def log_page(self, run_id: str, page: Path) -> None:
        """The run's HTML page as the artifact `report.html` of the registration run (again: overwritten)."""
        with tempfile.TemporaryDirectory() as tmp:
            named = Path(tmp) / registry_tags.REPORT_PAGE_ARTIFACT  # the artifact's name, whatever the file's
            named.write_bytes(page.read_bytes())
            self._call(lambda: self.client.log_artifact(run_id, str(named)))

    def _log_records(self, run_id: str, reg: Registration, tmp: Path) -> None:
        """The trained-on record and the data profile, as run artifacts (the gate and drift read them back)."""
        if reg.trained_on is not None:
            (tmp / registry_tags.TRAINED_ON_ARTIFACT).write_bytes(reg.trained_on.to_bytes())
            self._call(lambda: self.client.log_artifact(run_id, str(tmp / registry_tags.TRAINED_ON_ARTIFACT)))
        if reg.profile is not None:
            profile = reg.profile.dump()
            self._call(lambda: self.client.log_dict(run_id, profile, registry_tags.PROFILE_ARTIFACT))

    def _log_model(
        self, reg: Registration, card: str, tmp: Path, timings: dict[str, float]
    ) -> tuple[ModelInfo, dict[str, dict[str, str]]]:
        """The served pyfunc model (textclf.py, the model folder, the card) in the active run; its info and
        the manifest of the files it must serve."""
        card_path = tmp / registry_tags.MODEL_CARD_ARTIFACT
        card_path.write_text(card, encoding="utf-8")
        t = time.perf_counter()
        served = served_manifest(reg.model_dir)
        info = self._call(
            lambda: mlflow.pyfunc.log_model(
                name=registry_tags.MODEL_ARTIFACT,
                python_model=str(Path(textclf.__file__)),
                artifacts={textclf.HF_ARTIFACT: str(reg.model_dir), "model_card": str(card_path)},
                # every serving option, so each can be set at load (MLflow ignores a key not logged)
                model_config={**textclf.DEFAULT_CONFIG, **reg.model_config, "manifest": served},
                code_paths=[str(f) for f in registered_code()],
                signature=served_signature(reg),
                input_example=pd.DataFrame({"text": reg.example_texts}),
                pip_requirements=pyfunc_requirements(),
            )
        )
        timings["log_model_s"] = round(time.perf_counter() - t, 2)
        return info, served

    def _register_version(
        self, run_id: str, model_uri: str, tags: dict[str, str], await_s: int, timings: dict[str, float]
    ) -> str:
        """The model version of run `run_id` (status pending): found if a lost answer already made it."""
        t = time.perf_counter()

        def find_or_register() -> ModelVersion:  # a registration whose answer was lost is found
            return self.version_of_run(run_id) or mlflow.register_model(
                model_uri,
                self.name,
                await_registration_for=await_s,
                tags={**tags, registry_tags.STATUS: registry_tags.PENDING},
            )

        version = str(self._call(find_or_register).version)
        timings["register_s"] = round(time.perf_counter() - t, 2)
        return version

    def describe(self, version: str, card: str) -> None:
        """The model card as the version's description (and a description for the registered model)."""
        # here, not at the top: the card imports the gate and scikit-learn, which `ftpipe history` and the
        # other plain registry commands do not need (tests/flows/commands/test_plain_commands.py)
        from stages.registry.card import description

        version = canonical_version(version)
        self._call(
            lambda: self.client.update_model_version(self.name, version, description=description(card))
        )
        if not self._call(lambda: self.client.get_registered_model(self.name)).description:
            self._call(
                lambda: self.client.update_registered_model(
                    self.name, description="ftpipe text classifier; see each version's model card."
                )
            )

    def redecide(self, version: str, run_id: str | None, tags: dict[str, str], card: str) -> None:
        """Replace a resumed version's gate decision (tags, the run's gate.json and card, the description)."""
        self.set_tags(version, tags)
        if run_id:
            if registry_tags.GATE_JSON in tags:
                self._call(
                    lambda: self.client.log_text(
                        run_id, tags[registry_tags.GATE_JSON], registry_tags.GATE_ARTIFACT
                    )
                )
            self._call(lambda: self.client.log_text(run_id, card, registry_tags.MODEL_CARD_ARTIFACT))
        self.describe(version, card)

    def finish(self, version: str, promote: bool, reason: str) -> None:
        """Set the aliases (challenger always, champion if the gate passed), then mark the version complete."""
        version = canonical_version(version)
        self._call(lambda: self.client.set_registered_model_alias(self.name, CHALLENGER, version))
        if promote and self.champion() != version:  # a resumed run may find the move already made
            self.set_champion(version, "gate", reason)
        self.set_status(version, registry_tags.COMPLETE)

    # ------------------------------------------------------------------ champion history

    def _model_tags(self) -> dict[str, str]:
        return dict(self._call(lambda: self.client.get_registered_model(self.name)).tags)

    def _write_event(self, key: str, event: HistoryEvent) -> None:
        text = json.dumps(event, sort_keys=True)
        self._call(lambda: self.client.set_registered_model_tag(self.name, key, text))

    def history(self) -> list[HistoryEvent]:
        """Every change of the champion, oldest first (RegistryError when the model does not exist).

        An event a crash left as an intent is settled first (`reconcile_history`).
        """
        try:
            self._model_tags()
        except MlflowException:
            raise RegistryError(
                f"no registered model `{self.name}` at {redact_uri(self.uri)}; run the pipeline first."
            ) from None
        self.reconcile_history()
        return history_from_tags(self._model_tags())

    def reconcile_history(self) -> list[str]:
        """Settle the intents a crash left: confirm the one whose move was made, mark the others not applied.

        A champion change writes its event first as an intent (`"pending": true`), then moves the alias,
        then confirms the event; whatever point a run was killed at, this makes the history agree with
        the alias. Returns one note per event settled. No registered model yet: nothing to do.
        """
        try:
            tags = self._model_tags()
        except MlflowException:
            return []
        pending = [(k, read_event(tags[k])) for k in history_keys(tags)]
        pending = [(k, ev) for k, ev in pending if ev.get("pending")]
        if not pending:
            return []
        champ, notes = self.champion(), []
        for i, (key, ev) in enumerate(pending):
            ev.pop("pending")
            if i == len(pending) - 1 and champ == ev["to"]:
                notes.append(f"history {key}: champion -> v{ev['to']} was made; its event is confirmed")
            else:
                ev["not_applied"] = (
                    f"interrupted before the alias moved (@champion was v{champ or '-'} when reconciled)"
                )
                notes.append(f"history {key}: champion -> v{ev['to']} was never made; marked not applied")
            self._write_event(key, ev)
        return notes

    def set_champion(
        self, version: str, action: str, reason: str, who: str | None = None, gate: str | None = None
    ) -> HistoryEvent:
        """Point `@champion` at `version` and record the event (with `gate`: the verdict it overrules).

        Three writes, in the order that survives a kill between any two: the event as an intent, the
        alias, the event confirmed. `reconcile_history` (run first here, by `history` and by register)
        settles an intent whose run died.
        """
        version = canonical_version(version)
        self.reconcile_history()
        previous = self.champion()
        event = make_event(action, previous, version, reason, who=who)
        if gate is not None:
            event["gate"] = gate
        key = next_history_key(self._model_tags())
        self._write_event(key, {**event, "pending": True})
        self._call(lambda: self.client.set_registered_model_alias(self.name, CHAMPION, version))
        self._write_event(key, event)
        return event

    def promote(self, version: str, reason: str, who: str | None = None) -> HistoryEvent | None:
        """Make `version` the champion by hand (it may overrule the gate: the event records its verdict).

        None when `version` is the champion already: nothing changes and no event is recorded."""
        version = canonical_version(version)
        if not reason.strip():
            raise RegistryError("a promotion needs a reason: --reason 'why'.")
        mv = self.version(version)
        current = self.champion()
        if current == version:
            return None
        check_promotable(version, mv.status, mv.tags.get(registry_tags.STATUS), current)
        return self.set_champion(
            version, "promote", reason, who=who, gate=mv.tags.get(registry_tags.GATE_DECISION, "unknown")
        )

    def record_judgement(
        self, version: str, promote: bool, reason: str, who: str | None = None
    ) -> HistoryEvent:
        """The gate's new verdict on `version` (`ftpipe gate`) as a history event: the champion moved to it
        when it passed; else the event is kept, marked not applied, and the alias stays where it is."""
        version = canonical_version(version)
        if promote:
            return self.set_champion(version, "gate", reason, who=who, gate="promote")
        self.reconcile_history()
        event = make_event("gate", self.champion(), version, reason, who=who)
        event["gate"] = "reject"
        event["not_applied"] = "the gate rejected it: the champion stays"
        self._write_event(next_history_key(self._model_tags()), event)
        return event

    def rollback(self, reason: str, who: str | None = None) -> HistoryEvent:
        """Return the champion to the one before it in the history."""
        if not reason.strip():
            raise RegistryError("a rollback needs a reason: --reason 'why'.")
        target = rollback_target(self.history(), self.champion())
        mv = self.version(target)
        if mv.status != "READY":
            raise RegistryError(
                f"the previous champion, version {target}, is {mv.status}; promote another one."
            )
        return self.set_champion(target, "rollback", reason, who=who)


def _record_tags(reg: Registration) -> dict[str, str]:
    """Tags naming the trained-on record and the data profile a registration logs (when it has them)."""
    tags: dict[str, str] = {}
    if reg.trained_on is not None:
        tags |= {
            registry_tags.TRAINED_ON: registry_tags.TRAINED_ON_ARTIFACT,
            registry_tags.TRAINED_ON_ROWS: reg.trained_on.summary(),
        }
    if reg.profile is not None:
        tags[registry_tags.PROFILE] = registry_tags.PROFILE_ARTIFACT
    return tags


def _leave_run(status: str, uri: str) -> None:
    """Drop the active MLflow run; its status is one short try (the registration's outcome is elsewhere).

    MLflow prints the run's link with the tracking URI as given: not when that holds a password."""
    if mlflow.active_run() is None:
        return
    quiet = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"} if redact_uri(uri) != uri else {}
    with mlflow_http_policy(1.0), temporary_env(quiet), contextlib.suppress(Exception):
        mlflow.end_run(status)


def served_signature(reg: Registration) -> ModelSignature:
    """What the served model reads and answers: a text; its label and score, and a `p_<label>` column per
    label, on request for one label per text, always for label sets (the set's label is "a|b")."""
    outputs: list[ColSpec | TensorSpec] = [ColSpec("string", "label"), ColSpec("double", "score")]
    if reg.label_sets:  # the per-label probabilities are that model's answer (stages/serving/textclf.py)
        outputs += [ColSpec("double", f"p_{name}") for name in reg.labels]
    return ModelSignature(
        inputs=Schema([ColSpec("string", "text")]),
        outputs=Schema(outputs),
        # p_<label> columns on request (textclf.py; `ftpipe predict --probabilities`)
        params=ParamSchema([ParamSpec("probabilities", "boolean", False)]),
    )


def pyfunc_requirements() -> list[str]:
    """Pinned pip requirements of the served model (the libraries textclf.py imports)."""
    reqs = []
    for pkg in PYFUNC_REQUIREMENTS:
        try:
            reqs.append(f"{pkg}=={importlib.metadata.version(pkg).split('+')[0]}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return reqs


def set_thresholds(loaded: Any) -> list[float] | None:
    """A loaded multi-label version's per-label thresholds (its smoke record keeps them), or None."""
    try:
        served = loaded.unwrap_python_model()
    except Exception:  # not a python-function model of ours: no thresholds to keep
        return None
    model = getattr(served, "model", None)
    if model is None or getattr(model.config, "problem_type", None) != textclf.MULTI_LABEL:
        return None
    return [float(t) for t in served.thresholds]
