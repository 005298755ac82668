"""The champion history's pure rules: events, their tag keys, replay, rollback target, promotability.

    events = history_from_tags(registered_model.tags)   # oldest first
    rollback_target(events, current="4")               # the champion before v4

Every change of the `champion` alias is one JSON event in the registered model's tags
(`ftpipe.history.000001`, ...: who, when, action, from, to, why). The Registry (stages/registry/client.py)
reads and writes those tags; everything here is pure, so `ftpipe history | rollback` and the tests can
reason about a history without a store.
"""

from __future__ import annotations

import getpass
import json
import os
import re
from datetime import datetime, timezone
from typing import NotRequired, TypedDict

from stages.registry import tags as registry_tags
from stages.registry.tracking import RegistryError

HISTORY_PREFIX = registry_tags.HISTORY_PREFIX
# what a person may type for version N: MLflow reads versions as integers, so "01", " 1", "+1" and "1.0"
# all mean version 1 there; anything else (1.5, -1, 0, abc) names no version
_VERSION = re.compile(r"\+?0*([1-9][0-9]*)(?:\.0*)?")
# MLflow keeps a version in an integer column: PostgreSQL's and MySQL's hold 2**31 - 1. A larger number
# is a typing mistake, refused before any request (SQLite failed on it, read as an outage after retries)
MAX_VERSION = 2**31 - 1
# an alias (`champion`): MLflow alias names start with a letter, versions never do
ALIAS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")

# one change of the champion, stored as JSON in a registered-model tag (`from`: a keyword, hence this form)
HistoryEvent = TypedDict(
    "HistoryEvent",
    {
        "at": str,
        "who": str,
        "action": str,  # gate | promote | rollback
        "from": str | None,
        "to": str,
        "reason": str,
        "gate": NotRequired[str],  # promote: the gate's verdict on the version (a promotion may overrule it)
        "pending": NotRequired[bool],  # an intent: the alias move is not confirmed yet
        "not_applied": NotRequired[str],  # why the alias move never happened
    },
)


def canonical_version(text: str | int) -> str:
    """MLflow's canonical form of a model version: a positive integer as a string ("01", " 1", "+1",
    "1.0" -> "1"); RegistryError naming the value and the fix for anything else.

    Every entry point that takes a version (promote, fetch, predict --version, the Registry's methods)
    parses it here, so the history, the alias and the messages all say "1", never "01".
    """
    match = _VERSION.fullmatch(str(text).strip())
    if match is None:
        raise RegistryError(
            f"`{text}` is not a model version: a version is a whole number from 1 up, such as 3 "
            "(`ftpipe history --versions` lists them)."
        )
    digits = match.group(1)
    if len(digits) > len(str(MAX_VERSION)) or int(digits) > MAX_VERSION:
        shown = digits if len(digits) <= 40 else f"{digits[:20]}...({len(digits)} digits)"
        raise RegistryError(
            f"`{shown}` is larger than any model version (a registry stores at most {MAX_VERSION}): "
            "check the number (`ftpipe history --versions` lists them)."
        )
    return digits


def _event_version(value: str) -> str:
    """An event's `from`/`to` in canonical form; a value that names no version is kept as written."""
    try:
        return canonical_version(value)
    except RegistryError:
        return value


def check_promotable(version: str, status: str, ftpipe_status: str | None, current: str | None) -> None:
    """Raise RegistryError when `version` must not become champion."""
    if str(version) == current:
        raise RegistryError(f"version {version} is already the champion; nothing to do.")
    if status != "READY":
        raise RegistryError(f"version {version} is {status}, not READY; it cannot serve as champion.")
    if ftpipe_status not in registry_tags.USABLE_STATUSES:
        raise RegistryError(
            f"version {version} is marked `{registry_tags.STATUS}={ftpipe_status}` (its registration did not "
            "finish or it failed verification); register the model again instead."
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
) -> HistoryEvent:
    """One history entry: a change of the champion alias (versions stored canonical)."""
    return {
        "at": at or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "who": who or current_user(),
        "action": action,
        "from": None if from_version is None else canonical_version(from_version),
        "to": canonical_version(to_version),
        "reason": reason,
    }


def history_keys(tags: dict[str, str]) -> list[str]:
    return sorted(k for k in tags if k.startswith(HISTORY_PREFIX) and k[len(HISTORY_PREFIX) :].isdigit())


def read_event(text: str) -> HistoryEvent:
    """One stored event, its versions canonical: an event written as "01" before ftpipe parsed versions
    reads as "1", so replay and rollback compare versions as MLflow does."""
    event: HistoryEvent = json.loads(text)
    if (before := event.get("from")) is not None:
        event["from"] = _event_version(before)
    if (after := event.get("to")) is not None:
        event["to"] = _event_version(after)
    return event


def history_from_tags(tags: dict[str, str]) -> list[HistoryEvent]:
    """The events stored in registered-model tags, oldest first (versions canonical: `read_event`)."""
    return [read_event(tags[k]) for k in history_keys(tags)]


def next_history_key(tags: dict[str, str]) -> str:
    nums = [int(k[len(HISTORY_PREFIX) :]) for k in history_keys(tags)]
    return f"{HISTORY_PREFIX}{max(nums, default=0) + 1:06d}"


def applied(event: HistoryEvent) -> bool:
    """False for an event whose alias move never happened (or is not settled yet)."""
    return not (event.get("pending") or event.get("not_applied"))


def champion_stack(events: list[HistoryEvent]) -> list[str]:
    """Replay the history: promotions push a version, rollbacks pop back; the last item is the champion."""
    stack: list[str] = []
    for ev in filter(applied, events):
        if ev["action"] == "rollback":
            while stack and stack[-1] != ev["to"]:
                stack.pop()
            if not stack:
                stack.append(ev["to"])
        else:
            stack.append(ev["to"])
    return stack


def missing_alias_message(name: str, alias: str, versions: dict[str, list[str]]) -> str:
    """Why `models:/NAME@ALIAS` cannot be used, naming the versions there are and their aliases.

    `versions`: each version -> its aliases. For example: "no `champion` alias on ftpipe-bbc-news;
    versions: 1 (challenger), 2; aliases: challenger -> 1. Promote one with `ftpipe promote 1 --reason ...`".
    """
    if not versions:
        return (
            f"no `{alias}` alias on {name}: it has no versions yet. Run the pipeline (`ftpipe run`) to "
            "register one."
        )
    order = sorted(versions, key=int)
    listed = ", ".join(f"{v} ({', '.join(versions[v])})" if versions[v] else v for v in order)
    pointed = sorted((a, v) for v in order for a in versions[v])
    aliases = ", ".join(f"{a} -> {v}" for a, v in pointed) or "none"
    suggest = next((v for a, v in pointed if a == registry_tags.CHALLENGER), order[-1])
    fix = (
        f"Promote one with `ftpipe promote {suggest} --reason ...`."
        if alias == registry_tags.CHAMPION
        else f"Name a version number instead (e.g. {suggest}), or one of the aliases there are."
    )
    return f"no `{alias}` alias on {name}; versions: {listed}; aliases: {aliases}. {fix}"


def rollback_target(events: list[HistoryEvent], current: str | None) -> str:
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
