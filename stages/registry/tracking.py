"""The MLflow tracking store: where it lives, and how long ftpipe waits for it.

    uri = tracking_uri()                     # MLFLOW_TRACKING_URI, else sqlite:///<repo>/mlflow.db
    client = connect(uri, RetryPolicy(retries=4, backoff_s=1.0, timeout_s=120))
    with_retries(lambda: client.get_registered_model("m"), uri, policy, retry_if=is_transient)

- Tracking URI: `MLFLOW_TRACKING_URI` when set (a server, a database URI); otherwise the SQLite file
  `mlflow.db` at the root of the workspace the command works in, found from the working directory as DVC
  finds it (`ftpipe run --root` works there; the original workspace under `dvc exp run --temp`), never
  from where ftpipe's code is installed. With any SQLite
  store, artifacts go to `mlartifacts/` beside the database file (set on the experiment when it is
  created), so nothing depends on the working directory. Credentials come only from the environment
  (`MLFLOW_TRACKING_USERNAME`/`PASSWORD`/`TOKEN`); URIs are shown with any password removed.
- One retry and timeout policy (`RetryPolicy`, from `register.retries`, `backoff_s`, `timeout_s`) for
  every MLflow request ftpipe makes: MLflow's own HTTP retries are off, a failure of the store
  (refused, no answer, 5xx, a locked SQLite file) is retried with doubling waits, each request waits at
  most timeout_s / (retries + 1) for an answer, and no attempt runs past `timeout_s`; never retried: a
  definite answer ("no such thing", "bad request", "denied"). Then `TrackingUnavailable` says why, with
  the URI's password masked (stages/core/redact.py).

The registry (stages/registry/client.py) and the integrity checks of a version's files
(stages/registry/integrity.py) make every request through `with_retries`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import mlflow
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from stages.config.register import RetryPolicy
from stages.core.redact import mask_secrets, redact_uri

DEFAULT_DB = Path("mlflow.db")  # at the workspace's root
DEFAULT_ARTIFACTS = Path("mlartifacts")  # beside a SQLite store
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

R = TypeVar("R")


class TrackingUnavailable(RuntimeError):
    """The tracking server could not be reached after the retries; the message names the URI."""


class RegistryError(ValueError):
    """A registry request that cannot be done (unknown version, nothing to roll back to, ...)."""


def workspace_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` (the working directory) holding `dvc.yaml` or `.dvc/`, as DVC
    finds its repository; `start` itself when there is none."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file() or (folder / ".dvc").is_dir():
            return folder
    return here


def repo_root() -> Path:
    """The workspace the user works in: `DVC_ROOT` when DVC runs the stage, else the working directory's.

    `dvc exp run --temp` and queued experiments run in a temporary copy of the workspace, and DVC sets
    `DVC_ROOT` to the original repository there, so their registrations land where the user looks. Never
    the checkout ftpipe's code was installed from: one venv's `ftpipe` run in another checkout works on
    that checkout's registry.
    """
    return Path(os.environ["DVC_ROOT"]) if os.environ.get("DVC_ROOT") else workspace_root()


def tracking_uri(root: Path | None = None) -> str:
    """`MLFLOW_TRACKING_URI` if set, else `mlflow.db` at `root` (by default the workspace's root)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(root or repo_root()) / DEFAULT_DB}"


def default_artifact_location(uri: str, experiment: str) -> str | None:
    """Artifacts beside a SQLite file (`<db folder>/mlartifacts/<experiment>`), never relative to the cwd.

    None for a server or another database: the server's own artifact root applies.
    """
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///")).expanduser()
        if not db.is_absolute():  # sqlite:///relative.db: MLflow resolves it against the cwd too
            db = Path.cwd() / db
        return (db.parent / DEFAULT_ARTIFACTS / experiment).as_uri()
    return None


def use_store(uri: str) -> None:
    """Point MLflow's process-global tracking and registry URIs (fluent API, `models:/` URIs) at `uri`.

    The registry URI is set too, since one set earlier in the process (e.g. by batch prediction) would
    otherwise win over the tracking one.
    """
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def mlflow_http_policy(request_timeout_s: float) -> contextlib.AbstractContextManager[None]:
    """MLflow's HTTP layer for the block: no retries of its own, `request_timeout_s` per request."""
    return temporary_env(
        {
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": str(max(1, int(request_timeout_s))),  # MLflow reads an int
        }
    )


@contextlib.contextmanager
def temporary_env(settings: dict[str, str]) -> Iterator[None]:
    """Environment variables set for the block (MLflow reads its settings from there), then restored."""
    old = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def is_transient(exc: Exception) -> bool:
    """Worth retrying: anything but a definite answer from the store (not found, bad request, denied)."""
    if isinstance(exc, RegistryError):
        return False
    return not (isinstance(exc, MlflowException) and exc.error_code in _DEFINITE_ERRORS)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def describe_failure(exc: BaseException) -> str:
    """One masked line saying why a call failed: no answer in time, refused, or the error's first line."""
    causes = list(_causes(exc))
    if any(isinstance(c, requests.exceptions.Timeout | TimeoutError) for c in causes):
        return "no answer in time (the server accepts connections but does not respond)"
    text = " ".join(str(c) for c in causes)
    if "Connection refused" in text or "NewConnectionError" in text:
        return "connection refused (nothing listens there)"
    first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return mask_secrets(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)


def with_retries(
    fn: Callable[[], R],
    uri: str,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    retry_if: Callable[[Exception], bool] = lambda exc: True,
    clock: Callable[[], float] = time.monotonic,
) -> R:
    """Call `fn` under `policy`; a failure `retry_if` rejects is raised at once, masked of secrets.

    Retries stop when they are used up or the next attempt would start past `policy.timeout_s`; then
    `TrackingUnavailable` says what was tried, for how long, and what to do.
    """
    start = clock()
    deadline = start + policy.timeout_s
    attempts = 0
    last: Exception | None = None
    while True:
        attempts += 1
        remaining = deadline - clock()
        try:
            with mlflow_http_policy(min(policy.request_timeout_s, max(remaining, 1.0))):
                return fn()
        except Exception as exc:  # connection refused, timeouts, 5xx, a locked SQLite file...
            if not retry_if(exc):
                if isinstance(exc, MlflowException) and mask_secrets(exc.message) != exc.message:
                    masked = MlflowException(mask_secrets(exc.message))
                    masked.error_code = exc.error_code  # the constructor takes only the numeric code
                    raise masked from None
                raise
            last = exc
        if attempts > policy.retries:
            break
        wait = policy.backoff_s * 2 ** (attempts - 1)
        if deadline - clock() - wait < 1.0:  # no time left for another attempt
            break
        sleep(wait)
    raise TrackingUnavailable(
        f"MLflow tracking store at {redact_uri(uri)} did not answer: {attempts} attempt(s) in "
        f"{clock() - start:.0f} s (register.retries = {policy.retries}, register.timeout_s = "
        f"{policy.timeout_s:g}; last error: {describe_failure(last) if last else 'none'}). Start it (e.g. "
        "`mlflow server --host 127.0.0.1 --port 5000`), fix MLFLOW_TRACKING_URI, or unset it to use the "
        "local SQLite store; then run again."
    ) from None  # the cause's text holds the raw URI, password included


def connect(uri: str, policy: RetryPolicy = RetryPolicy()) -> MlflowClient:
    """An MlflowClient for `uri`, after checking (under `policy`) that the store answers."""
    use_store(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    with_retries(lambda: client.search_experiments(max_results=1), uri, policy)
    return client
