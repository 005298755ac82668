"""Where MLflow lives, how to reach it, and the champion history kept in the registry itself.

Shared by the register stage and the `ftpipe promote | rollback | history` commands (flows/registry.py).

- Tracking URI: `MLFLOW_TRACKING_URI` when set (a server, a database URI); otherwise the SQLite file
  `mlflow.db` at the repository root. With any SQLite store, artifacts go to `mlartifacts/` beside the
  database file (set on the experiment when it is created), so nothing depends on the working directory. Credentials come only from the environment
  (`MLFLOW_TRACKING_USERNAME`/`PASSWORD`/`TOKEN`); URIs are shown with any password removed.
- Every change of the `champion` alias (by the gate, `promote` or `rollback`) appends one event to the
  registered model's tags (`ftpipe.history.000001`, ...: JSON with who, when, action, from, to, why), so
  the audit trail lives and dies with the registry. The history helpers below are pure.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DB = REPO_ROOT / "mlflow.db"
DEFAULT_ARTIFACTS = REPO_ROOT / "mlartifacts"

CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY_PREFIX = "ftpipe.history."

T = TypeVar("T")


class TrackingUnavailable(RuntimeError):
    """The tracking server could not be reached after the retries; the message names the URI."""


class RegistryError(ValueError):
    """A registry request that cannot be done (unknown version, nothing to roll back to, ...)."""


# --------------------------------------------------------------------------- where MLflow lives


def tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI` if set, else the repo-root SQLite file."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{DEFAULT_DB}"


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


def with_retries(
    fn: Callable[[], T], uri: str, retries: int, backoff_s: float, sleep: Callable[[float], None] = time.sleep
) -> T:
    """Call `fn`; on failure wait backoff_s, 2*backoff_s, ... up to `retries` more times, then fail clearly."""
    last: Exception | None = None
    for attempt in range(retries + 1):
        try:
            with _mlflow_http_retries(0):
                return fn()
        except Exception as exc:  # connection refused, timeouts, 5xx, a locked SQLite file...
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


def connect(uri: str, retries: int = 3, backoff_s: float = 1.0) -> Any:
    """An MlflowClient for `uri`, after checking (with retries) that the store answers."""
    import mlflow
    from mlflow import MlflowClient

    # the fluent API and `models:/` URIs use the global URIs; set the registry's too, since a registry
    # URI set earlier in the process (e.g. by batch prediction) would otherwise win over the tracking one
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    with_retries(lambda: client.search_experiments(max_results=1), uri, retries, backoff_s)
    return client


# --------------------------------------------------------------------------- history (pure parts)


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


def history_from_tags(tags: dict[str, str]) -> list[dict[str, Any]]:
    """The events stored in registered-model tags, oldest first."""
    keys = sorted(k for k in tags if k.startswith(HISTORY_PREFIX) and k[len(HISTORY_PREFIX) :].isdigit())
    return [json.loads(tags[k]) for k in keys]


def next_history_key(tags: dict[str, str]) -> str:
    nums = [
        int(k[len(HISTORY_PREFIX) :])
        for k in tags
        if k.startswith(HISTORY_PREFIX) and k[len(HISTORY_PREFIX) :].isdigit()
    ]
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


# --------------------------------------------------------------------------- registry operations


def read_history(client: Any, name: str) -> list[dict[str, Any]]:
    return history_from_tags(client.get_registered_model(name).tags)


def champion_version(client: Any, name: str) -> str | None:
    """The version behind `@champion`, or None (no model, or no alias yet)."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def set_champion(
    client: Any, name: str, version: str, action: str, reason: str, who: str | None = None, **extra: Any
) -> dict[str, Any]:
    """Point `@champion` at `version` and append the event (plus `extra` fields) to the history."""
    previous = champion_version(client, name)
    event = {**make_event(action, previous, str(version), reason, who=who), **extra}
    client.set_registered_model_alias(name, CHAMPION, str(version))
    tags = client.get_registered_model(name).tags
    client.set_registered_model_tag(name, next_history_key(tags), json.dumps(event, sort_keys=True))
    return event
