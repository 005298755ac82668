"""The one module that talks to the MLflow registry: `Registry`, plus where MLflow lives and the history.

    reg = Registry.connect(tracking_uri(), "ftpipe-bbc-news")
    reg.champion()                 # "3" or None
    reg.champion_record()          # its labels, trained-on record and data profile (for the gate and drift)
    reg.promote("4", reason="hand-checked")

Used by the register stage, the `ftpipe promote | rollback | history` commands (flows/registry.py), batch
prediction (flows/predict.py) and the retrain flow; none of them calls MlflowClient directly.

- Tracking URI: `MLFLOW_TRACKING_URI` when set (a server, a database URI); otherwise the SQLite file
  `mlflow.db` at the repository root (the original one under `dvc exp run --temp`). With any SQLite store, artifacts go to `mlartifacts/` beside the
  database file (set on the experiment when it is created), so nothing depends on the working directory.
  Credentials come only from the environment (`MLFLOW_TRACKING_USERNAME`/`PASSWORD`/`TOKEN`); URIs are
  shown with any password removed.
- One retry policy: every registry request is retried `retries` times with doubling waits from
  `backoff_s` when the store fails (connection refused, timeouts, 5xx, a locked SQLite file), never when
  it answers "no such thing" or "bad request"; then `TrackingUnavailable` names the URI.
- Every change of the `champion` alias (by the gate, `promote` or `rollback`) appends one event to the
  registered model's tags (`ftpipe.history.000001`, ...: JSON with who, when, action, from, to, why), so
  the audit trail lives and dies with the registry. The history helpers below the class are pure.
- Tag and artifact names come from stages/common/tags.py.
"""

from __future__ import annotations

import contextlib
import getpass
import importlib.metadata
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema
from pydantic import Field

from stages.common import manifest as M
from stages.common import tags as T
from stages.common import textclf
from stages.common.gate import GateParams
from stages.common.lineage import TrainedOn
from stages.common.params import StageParams

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DB = REPO_ROOT / "mlflow.db"
DEFAULT_ARTIFACTS = REPO_ROOT / "mlartifacts"

# kept as names here too: callers say `registry.CHAMPION`
CHAMPION = T.CHAMPION
CHALLENGER = T.CHALLENGER
HISTORY_PREFIX = T.HISTORY_PREFIX
# MLflow error codes that mean "the store answered: no"; retrying will not change the answer
_DEFINITE_ERRORS = frozenset(
    {
        "RESOURCE_DOES_NOT_EXIST",
        "NOT_FOUND",
        "ENDPOINT_NOT_FOUND",
        "INVALID_PARAMETER_VALUE",
        "RESOURCE_ALREADY_EXISTS",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
        "CUSTOMER_UNAUTHORIZED",
        "BAD_REQUEST",
        "MALFORMED_REQUEST",
        "INVALID_STATE",
        "FEATURE_DISABLED",
        "NOT_IMPLEMENTED",
    }
)
RUN_TAG_MAX = 8000
PYFUNC_REQUIREMENTS = ("mlflow", "torch", "transformers", "tokenizers", "safetensors", "pandas", "numpy")

R = TypeVar("R")


class RegisterParams(StageParams):
    """The `register` section of params.yaml: the registered model, the gate, and how to reach the store."""

    model_name: str = Field("ftpipe-bbc-news", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    gate: GateParams = GateParams()
    retries: int = Field(4, ge=0, le=20, description="extra attempts to reach the tracking server")
    backoff_s: float = Field(1.0, ge=0.0, le=60.0, description="first wait; doubles each retry")
    batch_size: int = Field(32, ge=1, description="batch size of the served model")
    verify_rows: int = Field(64, ge=1, description="test rows the registered model must predict as evaluated")
    verify_min_agreement: float = Field(0.95, ge=0.0, le=1.0)
    await_registration_s: int = Field(300, ge=1)


class TrackingUnavailable(RuntimeError):
    """The tracking server could not be reached after the retries; the message names the URI."""


class RegistryError(ValueError):
    """A registry request that cannot be done (unknown version, nothing to roll back to, ...)."""


# --------------------------------------------------------------------------- where MLflow lives


def repo_root() -> Path:
    """The repository the user works in: `DVC_ROOT` when DVC runs the stage, else this checkout.

    `dvc exp run --temp` and queued experiments run in a temporary copy of the workspace, and DVC sets
    `DVC_ROOT` to the original repository there, so their registrations land where the user looks.
    """
    return Path(os.environ["DVC_ROOT"]) if os.environ.get("DVC_ROOT") else REPO_ROOT


def tracking_uri(root: Path | None = None) -> str:
    """`MLFLOW_TRACKING_URI` if set, else `mlflow.db` at `root` (by default the repository's root)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(root or repo_root()) / DEFAULT_DB.name}"


def default_artifact_location(uri: str, experiment: str) -> str | None:
    """Artifacts beside a SQLite file (`<db folder>/mlartifacts/<experiment>`), never relative to the cwd.

    None for a server or another database: the server's own artifact root applies.
    """
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///")).expanduser()
        if not db.is_absolute():  # sqlite:///relative.db: MLflow resolves it against the cwd too
            db = Path.cwd() / db
        return (db.parent / DEFAULT_ARTIFACTS.name / experiment).as_uri()
    return None


def redact_uri(uri: str) -> str:
    """The URI without a password (`http://user:***@host`), fit for logs, tags and reports."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<unparseable URI>"
    if parts.password is None:
        return uri
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def use_store(uri: str) -> None:
    """Point MLflow's process-global tracking and registry URIs (fluent API, `models:/` URIs) at `uri`.

    The registry URI is set too, since one set earlier in the process (e.g. by batch prediction) would
    otherwise win over the tracking one.
    """
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


@contextlib.contextmanager
def _mlflow_http_retries(n: int) -> Iterator[None]:
    """Set MLflow's own HTTP retries for the block (so our loop owns the waiting), then restore."""
    old = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(n)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MLFLOW_HTTP_REQUEST_MAX_RETRIES", None)
        else:
            os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = old


def is_transient(exc: Exception) -> bool:
    """Worth retrying: anything but a definite answer from the store (not found, bad request, denied)."""
    if isinstance(exc, RegistryError):
        return False
    return not (isinstance(exc, MlflowException) and exc.error_code in _DEFINITE_ERRORS)


def with_retries(
    fn: Callable[[], R],
    uri: str,
    retries: int,
    backoff_s: float,
    sleep: Callable[[float], None] = time.sleep,
    retry_if: Callable[[Exception], bool] = lambda exc: True,
) -> R:
    """Call `fn`; on a failure `retry_if` accepts, wait backoff_s, 2*backoff_s, ... up to `retries` more
    times, then fail clearly. A failure `retry_if` rejects is raised at once."""
    last: Exception | None = None
    for attempt in range(retries + 1):
        try:
            with _mlflow_http_retries(0):
                return fn()
        except Exception as exc:  # connection refused, timeouts, 5xx, a locked SQLite file...
            if not retry_if(exc):
                raise
            last = exc
            if attempt < retries:
                sleep(backoff_s * 2**attempt)
    first_line = (
        str(last).strip().splitlines()[0][:300] if last and str(last).strip() else type(last).__name__
    )
    raise TrackingUnavailable(
        f"MLflow tracking server at {redact_uri(uri)} did not answer after {retries + 1} attempt(s) "
        f"(last error: {first_line}). Start it (e.g. `mlflow server --host 127.0.0.1 --port 5000`), fix "
        "MLFLOW_TRACKING_URI, or unset it to use the local SQLite store; then run again."
    ) from last


def connect(uri: str, retries: int = 3, backoff_s: float = 1.0) -> MlflowClient:
    """An MlflowClient for `uri`, after checking (with retries) that the store answers."""
    use_store(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    with_retries(lambda: client.search_experiments(max_results=1), uri, retries, backoff_s)
    return client


# --------------------------------------------------------------------------- the Registry


@dataclass
class VersionRecord:
    """What a registered version says about itself: labels, what it trained on, its data profile."""

    version: str
    run_id: str | None
    labels: list[str] | None
    trained_on: TrainedOn | None
    profile: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)  # why a record or the profile is missing


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
    profile: dict[str, Any] | None
    model_dir: Path
    model_config: dict[str, Any]  # the served model's windowing, truncation and batch size
    example_texts: list[str]
    await_registration_s: int = 300


class Registry:
    """One registered model in one MLflow store: versions, aliases, status and lineage tags, history."""

    def __init__(self, client: MlflowClient, name: str, uri: str, retries: int = 4, backoff_s: float = 1.0):
        self.client, self.name, self.uri = client, name, uri
        self.retries, self.backoff_s = retries, backoff_s

    @classmethod
    def connect(cls, uri: str, name: str, retries: int = 4, backoff_s: float = 1.0) -> Registry:
        """Reach the store at `uri` (with retries) for the registered model `name`."""
        return cls(connect(uri, retries, backoff_s), name, uri, retries, backoff_s)

    def _call(self, fn: Callable[[], R]) -> R:
        return with_retries(fn, self.uri, self.retries, self.backoff_s, retry_if=is_transient)

    # ------------------------------------------------------------------ versions and aliases

    def version(self, version: str) -> ModelVersion:
        """Version `version`; RegistryError when there is none."""
        try:
            return self._call(lambda: self.client.get_model_version(self.name, str(version)))
        except MlflowException:
            raise RegistryError(
                f"registered model `{self.name}` has no version {version}; "
                "`ftpipe history --versions` lists the versions."
            ) from None

    def versions_with_hash(self, mhash: str) -> list[ModelVersion]:
        """The versions tagged with model hash `mhash`, oldest first."""
        try:
            found = self._call(lambda: self.client.search_model_versions(f"name = '{self.name}'"))
        except MlflowException:
            return []
        return sorted((v for v in found if v.tags.get(T.MODEL_HASH) == mhash), key=lambda v: int(v.version))

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

    def alias(self, alias: str) -> str | None:
        """The version behind `@alias`, or None (no model, or no such alias yet)."""
        try:
            return str(self._call(lambda: self.client.get_model_version_by_alias(self.name, alias)).version)
        except MlflowException:
            return None

    def champion(self) -> str | None:
        return self.alias(CHAMPION)

    def challenger(self) -> str | None:
        return self.alias(CHALLENGER)

    def aliases(self, version: str) -> list[str]:
        return sorted(self.version(version).aliases)

    # ------------------------------------------------------------------ status and tags

    def set_tags(self, version: str, tags: dict[str, str]) -> None:
        for k, v in tags.items():
            self._call(lambda k=k, v=v: self.client.set_model_version_tag(self.name, str(version), k, v))

    def set_status(self, version: str, status: str, **extra: str) -> None:
        """`ftpipe.status` (pending | verified | complete | broken) plus any extra tags."""
        self.set_tags(version, {**extra, T.STATUS: status})

    def mark_broken(self, version: str, reason: str) -> None:
        self.set_status(version, T.BROKEN, **{T.BROKEN_REASON: reason})

    # ------------------------------------------------------------------ records of a version

    def _artifact(self, run_id: str, path: str) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            local = self._call(lambda: self.client.download_artifacts(run_id, path, tmp))
            return Path(local).read_bytes()

    def record(self, version: str) -> VersionRecord:
        """Labels, trained-on record and data profile of `version`; a missing one is noted, not raised."""
        mv = self.version(version)
        tags, run_id = mv.tags, mv.run_id
        labels = json.loads(tags[T.LABELS]) if T.LABELS in tags else None
        rec = VersionRecord(str(mv.version), run_id, labels, None, None)
        if T.TRAINED_ON not in tags or not run_id:
            rec.notes.append(
                f"version {mv.version} has no record of what it trained on (registered before ftpipe kept one)"
            )
        else:
            try:
                rec.trained_on = TrainedOn.from_bytes(self._artifact(run_id, tags[T.TRAINED_ON]))
            except (MlflowException, OSError, ValueError) as exc:
                rec.notes.append(f"version {mv.version}'s trained-on record could not be read: {exc}")
        if T.PROFILE not in tags or not run_id:
            rec.notes.append(f"version {mv.version} has no stored data profile")
        else:
            try:
                rec.profile = json.loads(self._artifact(run_id, tags[T.PROFILE]))
            except (MlflowException, OSError, ValueError) as exc:
                rec.notes.append(f"version {mv.version}'s data profile could not be read: {exc}")
        return rec

    def champion_record(self) -> VersionRecord | None:
        """The champion's record (labels, trained-on, profile), or None when there is no champion."""
        champ = self.champion()
        return None if champ is None else self.record(champ)

    # ------------------------------------------------------------------ models

    def load(self, version: str) -> mlflow.pyfunc.PyFuncModel:
        """Version `version`, loaded only once its files match the manifest recorded at registration."""
        use_store(self.uri)
        return load_verified(self.version(version), self.uri)

    def fetch(self, version: str, dest: Path) -> int:
        """A checked copy of `version` at `dest` (which must not exist), to serve; the number of files.
        Written beside `dest` and renamed into place, so a refused download leaves nothing."""
        if dest.exists():
            raise RegistryError(f"{dest} already exists; name a new folder for the copy.")
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.tmp-") as tmp:
            (Path(tmp) / "model").mkdir()
            Path(download_verified(self.version(version), self.uri, Path(tmp) / "model")).rename(dest)
        return sum(1 for f in dest.rglob("*") if f.is_file())

    def predict(self, version: str, texts: list[str]) -> list[str]:
        """Labels `version` predicts for `texts` (loads it from the registry; errors are raised)."""
        if not texts:
            return []
        out = self.load(version).predict(pd.DataFrame({"text": texts}))
        return out["label"].astype(str).tolist()

    def verify(self, version: str, texts: list[str], expected: list[str]) -> tuple[float, str | None]:
        """Load `version` back and predict `texts`: (agreement with `expected`, error or None)."""
        try:
            out = self.load(version).predict(pd.DataFrame({"text": texts}))
            if list(out.columns[:2]) != ["label", "score"] or len(out) != len(texts):
                return (
                    0.0,
                    f"unexpected output: columns {list(out.columns)}, {len(out)} rows for {len(texts)}",
                )
        except Exception as exc:
            return 0.0, f"{type(exc).__name__}: {str(exc)[:300]}"
        got = out["label"].astype(str).tolist()
        return sum(a == b for a, b in zip(got, expected, strict=True)) / max(1, len(texts)), None

    # ------------------------------------------------------------------ registering

    def _experiment_id(self) -> str:
        exp = self._call(lambda: self.client.get_experiment_by_name(self.name))
        if exp is None:
            loc = default_artifact_location(self.uri, self.name)
            return self.client.create_experiment(self.name, artifact_location=loc)
        if exp.lifecycle_stage == "deleted":
            self._call(lambda: self.client.restore_experiment(exp.experiment_id))
        return exp.experiment_id

    def log_registration(self, reg: Registration, timings: dict[str, float] | None = None) -> tuple[str, str]:
        """One MLflow run with everything in `reg`, and a new model version (status pending); (run_id, version)."""
        timings = {} if timings is None else timings
        use_store(self.uri)
        record_tags = {}
        if reg.trained_on is not None:
            record_tags |= {T.TRAINED_ON: T.TRAINED_ON_ARTIFACT, T.TRAINED_ON_ROWS: reg.trained_on.summary()}
        if reg.profile is not None:
            record_tags[T.PROFILE] = T.PROFILE_ARTIFACT
        tags = {**reg.tags, **record_tags, T.TRACKING_URI: redact_uri(self.uri)}
        # run tags hold 8000 characters (MLflow cuts longer ones); version tags hold 100,000
        run_tags = {k: v for k, v in tags.items() if len(v) <= RUN_TAG_MAX}
        with mlflow.start_run(
            experiment_id=self._experiment_id(), run_name=reg.run_name, tags=run_tags
        ) as run:
            run_id = run.info.run_id
            if T.GATE_JSON in tags:
                mlflow.log_text(tags[T.GATE_JSON], T.GATE_ARTIFACT)
            mlflow.log_params(reg.params)
            mlflow.log_metrics(reg.metrics)
            now = int(time.time() * 1000)
            metrics = [Metric(k, v, now, step) for k, v, step in reg.step_metrics]
            for i in range(0, len(metrics), 1000):
                self._call(lambda i=i: self.client.log_batch(run_id, metrics=metrics[i : i + 1000]))
            for f in reg.files:
                mlflow.log_artifact(str(f), artifact_path=T.REPORTS_DIR)
            card = reg.card(run_id)
            mlflow.log_text(card, T.MODEL_CARD_ARTIFACT)
            with tempfile.TemporaryDirectory() as tmp:
                if reg.trained_on is not None:
                    (Path(tmp) / T.TRAINED_ON_ARTIFACT).write_bytes(reg.trained_on.to_bytes())
                    mlflow.log_artifact(str(Path(tmp) / T.TRAINED_ON_ARTIFACT))
                if reg.profile is not None:
                    mlflow.log_dict(reg.profile, T.PROFILE_ARTIFACT)
                card_path = Path(tmp) / T.MODEL_CARD_ARTIFACT
                card_path.write_text(card, encoding="utf-8")
                t = time.perf_counter()
                served = served_manifest(reg.model_dir)
                info = mlflow.pyfunc.log_model(
                    name=T.MODEL_ARTIFACT,
                    python_model=str(Path(textclf.__file__)),
                    artifacts={textclf.HF_ARTIFACT: str(reg.model_dir), "model_card": str(card_path)},
                    model_config={**reg.model_config, "manifest": served},
                    code_paths=[str(f) for f in registered_code()],
                    signature=ModelSignature(
                        inputs=Schema([ColSpec("string", "text")]),
                        outputs=Schema([ColSpec("string", "label"), ColSpec("double", "score")]),
                    ),
                    input_example=pd.DataFrame({"text": reg.example_texts}),
                    pip_requirements=pyfunc_requirements(),
                )
                timings["log_model_s"] = round(time.perf_counter() - t, 2)
            found = self._call(lambda: downloaded_manifest(info.model_uri))
            tags[T.MANIFEST] = M.dumps(check_logged(found, served, reg.model_dir.name, info.model_uri))
            t = time.perf_counter()
            mv = mlflow.register_model(
                info.model_uri,
                self.name,
                await_registration_for=reg.await_registration_s,
                tags={**tags, T.STATUS: T.PENDING},
            )
            version = str(mv.version)
            timings["register_s"] = round(time.perf_counter() - t, 2)
            mlflow.set_tag(T.MODEL_VERSION, version)
        self._call(lambda: self.client.update_model_version(self.name, version, description=card[:4900]))
        if not self._call(lambda: self.client.get_registered_model(self.name)).description:
            self._call(
                lambda: self.client.update_registered_model(
                    self.name, description="ftpipe text classifier; see each version's model card."
                )
            )
        return run_id, version

    def finish(self, version: str, promote: bool, reason: str) -> None:
        """Set the aliases (challenger always, champion if the gate passed), then mark the version complete."""
        self._call(lambda: self.client.set_registered_model_alias(self.name, CHALLENGER, str(version)))
        if promote:
            self.set_champion(version, "gate", reason)
        self.set_status(version, T.COMPLETE)

    # ------------------------------------------------------------------ champion history

    def history(self) -> list[dict[str, Any]]:
        """Every change of the champion, oldest first (RegistryError when the model does not exist)."""
        try:
            return history_from_tags(self._call(lambda: self.client.get_registered_model(self.name)).tags)
        except MlflowException:
            raise RegistryError(
                f"no registered model `{self.name}` at {redact_uri(self.uri)}; run the pipeline first."
            ) from None

    def set_champion(
        self, version: str, action: str, reason: str, who: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        """Point `@champion` at `version` and append the event (plus `extra` fields) to the history."""
        previous = self.champion()
        event = {**make_event(action, previous, str(version), reason, who=who), **extra}
        self._call(lambda: self.client.set_registered_model_alias(self.name, CHAMPION, str(version)))
        tags = self._call(lambda: self.client.get_registered_model(self.name)).tags
        key = next_history_key(tags)
        self._call(
            lambda: self.client.set_registered_model_tag(self.name, key, json.dumps(event, sort_keys=True))
        )
        return event

    def promote(self, version: str, reason: str, who: str | None = None) -> dict[str, Any]:
        """Make `version` the champion by hand (it may overrule the gate: the event records its verdict)."""
        if not reason.strip():
            raise RegistryError("a promotion needs a reason: --reason 'why'.")
        mv = self.version(version)
        check_promotable(str(version), mv.status, mv.tags.get(T.STATUS), self.champion())
        return self.set_champion(
            str(version), "promote", reason, who=who, gate=mv.tags.get(T.GATE_DECISION, "unknown")
        )

    def rollback(self, reason: str, who: str | None = None) -> dict[str, Any]:
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


# --------------------------------------------------------------------------- integrity of a version's files

# written by MLflow into every download of a registered model (its name and version): data, not code
DOWNLOAD_ONLY = ("registered_model_meta",)
UNVERIFIED_FIX = (
    "Promote a version registered with a manifest (`ftpipe history`, `ftpipe promote VERSION --reason ...`) "
    "or register the model folder again with this version of ftpipe."
)


def registered_code() -> list[Path]:
    """ftpipe's modules shipped with the served model (MLflow `code_paths`); textclf.py loads them by path."""
    from stages.common import meanpool  # shipped, not run here (importing it costs torch at CLI start)

    files = [Path(M.__file__), Path(meanpool.__file__)]
    assert sorted(f.name for f in files) == sorted(textclf.REGISTERED_CODE)
    return files


def served_manifest(model_dir: Path) -> dict[str, dict[str, str]]:
    """What the served model checks itself against at load (stored in its model_config): every file of
    the model folder and ftpipe's code registered with it."""
    return {
        textclf.HF_ARTIFACT: M.tree_manifest(model_dir),
        "code": {f.name: M.file_sha256(f) for f in registered_code()},
    }


def downloaded_manifest(model_uri: str) -> dict[str, str]:
    """The manifest of every file of the model at `model_uri`, as the store gives it back."""
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(model_uri, dst_path=tmp)
        return M.tree_manifest(local, ignore=DOWNLOAD_ONLY)


def check_logged(
    found: dict[str, str], served: dict[str, dict[str, str]], folder_name: str, model_uri: str
) -> dict[str, str]:
    """`found` (every file of the logged model: MLmodel, environment files, textclf.py, code/, artifacts/)
    once the folder and the code are seen to have arrived unchanged. Recorded as the version's
    `ftpipe.manifest` tag, against which every load is checked."""
    fix = "The artifact store changed the files while they were logged; register again."
    M.check(served[textclf.HF_ARTIFACT], M.under(found, f"artifacts/{folder_name}"), model_uri, fix)
    M.check(served["code"], M.under(found, "code"), model_uri, fix)
    M.check(
        {"textclf.py": M.file_sha256(textclf.__file__)},
        {"textclf.py": found.get("textclf.py", "")},
        model_uri,
        fix,
    )
    return found


def download_verified(mv: ModelVersion, uri: str, dst: str | Path) -> str:
    """Download version `mv` into `dst` and check every file against its `ftpipe.manifest` tag; the
    local path of the checked copy. A version without the tag (registered before ftpipe kept one) is
    refused."""
    what = f"model `{mv.name}` version {mv.version} (from {redact_uri(uri)})"
    if T.MANIFEST not in mv.tags:
        raise M.ManifestError(
            f"{what} has no `{T.MANIFEST}` tag: it was registered before ftpipe recorded a manifest of its "
            f"files, so they cannot be checked and it is not loaded. {UNVERIFIED_FIX}"
        )
    expected = M.loads(mv.tags[T.MANIFEST], f"{what}, tag {T.MANIFEST}")
    local = mlflow.artifacts.download_artifacts(f"models:/{mv.name}/{mv.version}", dst_path=str(dst))
    M.check(
        expected,
        M.tree_manifest(local, ignore=DOWNLOAD_ONLY),
        what,
        "Do not use this version: find who can write to the artifact store and restore its files, or "
        f"move the aliases to another version. {UNVERIFIED_FIX}",
    )
    return local


def load_verified(mv: ModelVersion, uri: str) -> mlflow.pyfunc.PyFuncModel:
    """Version `mv`, loaded from a copy whose files all match its manifest (`download_verified`).

    Nothing of the model runs before the check (MLflow runs textclf.py at load), and the checked copy is
    the one loaded.
    """
    with tempfile.TemporaryDirectory() as tmp:
        return mlflow.pyfunc.load_model(download_verified(mv, uri, tmp))


def load_uri_verified(model_uri: str, uri: str) -> mlflow.pyfunc.PyFuncModel:
    """`load_verified` for `models:/NAME/VERSION` or `models:/NAME@ALIAS` (other URIs have no record to
    check against and are refused); an unknown name, version or alias raises MLflow's own error."""
    found = re.fullmatch(r"models:/([^/@]+)(?:/(\d+)|@([^/]+))", model_uri)
    if found is None:
        raise M.ManifestError(
            f"{model_uri}: only registered versions (`models:/NAME/VERSION` or `models:/NAME@ALIAS`) are "
            "loaded, since only they have a recorded manifest to check the files against. Register the "
            "model (the register stage) and pass its version or alias."
        )
    name, version, alias = found.groups()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    mv = (
        client.get_model_version(name, version) if version else client.get_model_version_by_alias(name, alias)
    )
    return load_verified(mv, uri)


def pyfunc_requirements() -> list[str]:
    """Pinned pip requirements of the served model (the libraries textclf.py imports)."""
    reqs = []
    for pkg in PYFUNC_REQUIREMENTS:
        try:
            reqs.append(f"{pkg}=={importlib.metadata.version(pkg).split('+')[0]}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return reqs


# --------------------------------------------------------------------------- pure rules and history


def check_promotable(version: str, status: str, ftpipe_status: str | None, current: str | None) -> None:
    """Raise RegistryError when `version` must not become champion."""
    if str(version) == current:
        raise RegistryError(f"version {version} is already the champion; nothing to do.")
    if status != "READY":
        raise RegistryError(f"version {version} is {status}, not READY; it cannot serve as champion.")
    if ftpipe_status not in T.USABLE_STATUSES:
        raise RegistryError(
            f"version {version} is marked `{T.STATUS}={ftpipe_status}` (its registration did not finish or "
            "it failed verification); register the model again instead."
        )


def current_user() -> str:
    """Who is acting: $USER, else the login name, else `unknown`."""
    user = os.environ.get("USER") or os.environ.get("USERNAME")
    if user:
        return user
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def make_event(
    action: str,
    from_version: str | None,
    to_version: str,
    reason: str,
    who: str | None = None,
    at: str | None = None,
) -> dict[str, Any]:
    """One history entry: a change of the champion alias."""
    return {
        "at": at or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "who": who or current_user(),
        "action": action,
        "from": from_version,
        "to": to_version,
        "reason": reason,
    }


def _history_keys(tags: dict[str, str]) -> list[str]:
    return sorted(k for k in tags if k.startswith(HISTORY_PREFIX) and k[len(HISTORY_PREFIX) :].isdigit())


def history_from_tags(tags: dict[str, str]) -> list[dict[str, Any]]:
    """The events stored in registered-model tags, oldest first."""
    return [json.loads(tags[k]) for k in _history_keys(tags)]


def next_history_key(tags: dict[str, str]) -> str:
    nums = [int(k[len(HISTORY_PREFIX) :]) for k in _history_keys(tags)]
    return f"{HISTORY_PREFIX}{max(nums, default=0) + 1:06d}"


def champion_stack(events: list[dict[str, Any]]) -> list[str]:
    """Replay the history: promotions push a version, rollbacks pop back; the last item is the champion."""
    stack: list[str] = []
    for ev in events:
        if ev["action"] == "rollback":
            while stack and stack[-1] != ev["to"]:
                stack.pop()
            if not stack:
                stack.append(ev["to"])
        else:
            stack.append(ev["to"])
    return stack


def rollback_target(events: list[dict[str, Any]], current: str | None) -> str:
    """The champion before `current`; RegistryError when there is none."""
    if current is None:
        raise RegistryError(
            "there is no champion to roll back from; promote a version with `ftpipe promote`."
        )
    stack = champion_stack(events)
    if not stack or stack[-1] != current:  # the alias was moved outside ftpipe: treat it as the top
        stack.append(current)
    earlier = [v for v in stack[:-1] if v != current]
    if not earlier:
        raise RegistryError(
            f"version {current} is the first champion in the history; there is no earlier one to roll back "
            "to. Use `ftpipe promote VERSION --reason ...` to choose one."
        )
    return earlier[-1]
