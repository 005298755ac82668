"""`ftpipe promote | rollback | history`: move the `champion` alias by hand, with an audit trail.

    ftpipe promote 3 --reason "validated on the March sample"
    ftpipe rollback --reason "v3 mislabels sport headlines"
    ftpipe history

The registered model is `register.model_name` from params.yaml (or `--name`), in the MLflow store the
register stage uses (`MLFLOW_TRACKING_URI`, else the repo-root `mlflow.db`). Every change of the champion
appends who, when, why and from which version to which to the registered model's tags, so the history
lives in the registry itself; `rollback` returns to the champion before the current one in that history.
A manual promotion may overrule the gate (the event records the gate's verdict); it may not pick a
version that is not READY or that ftpipe marked broken.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from stages.common.registry import (
    CHALLENGER,
    RegistryError,
    TrackingUnavailable,
    champion_version,
    connect,
    read_history,
    rollback_target,
    set_champion,
    tracking_uri,
)

USABLE_STATUSES = (None, "complete", "verified")  # ftpipe.status of a version that may become champion


def _model_version(client: Any, name: str, version: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, str(version))
    except MlflowException:
        raise RegistryError(
            f"registered model `{name}` has no version {version}; `ftpipe history` lists the versions."
        ) from None


def check_promotable(version: str, status: str, ftpipe_status: str | None, current: str | None) -> None:
    """Raise RegistryError when `version` must not become champion (pure)."""
    if str(version) == current:
        raise RegistryError(f"version {version} is already the champion; nothing to do.")
    if status != "READY":
        raise RegistryError(f"version {version} is {status}, not READY; it cannot serve as champion.")
    if ftpipe_status not in USABLE_STATUSES:
        raise RegistryError(
            f"version {version} is marked `ftpipe.status={ftpipe_status}` (its registration did not finish or "
            "it failed verification); register the model again instead."
        )


def promote(client: Any, name: str, version: str, reason: str, who: str | None = None) -> dict[str, Any]:
    """Make `version` the champion by hand; return the history event."""
    if not reason.strip():
        raise RegistryError("a promotion needs a reason: --reason 'why'.")
    mv = _model_version(client, name, version)
    current = champion_version(client, name)
    check_promotable(str(version), mv.status, mv.tags.get("ftpipe.status"), current)
    return set_champion(
        client, name, str(version), "promote", reason, who=who, gate=mv.tags.get("gate.decision", "unknown")
    )


def rollback(client: Any, name: str, reason: str, who: str | None = None) -> dict[str, Any]:
    """Return the champion to the one before it in the history; return the history event."""
    if not reason.strip():
        raise RegistryError("a rollback needs a reason: --reason 'why'.")
    current = champion_version(client, name)
    target = rollback_target(read_history(client, name), current)
    mv = _model_version(client, name, target)
    if mv.status != "READY":
        raise RegistryError(f"the previous champion, version {target}, is {mv.status}; promote another one.")
    return set_champion(client, name, target, "rollback", reason, who=who)


def format_history(events: list[dict[str, Any]], champion: str | None, challenger: str | None) -> str:
    """The history as a table a person reads, newest last (pure)."""
    lines = [f"champion: {champion or '-'}   challenger: {challenger or '-'}", ""]
    if not events:
        return "\n".join(lines + ["no champion changes recorded yet"])
    rows = [("when", "who", "action", "from -> to", "why")]
    for e in events:
        rows.append((e["at"], e["who"], e["action"], f"{e['from'] or '-'} -> {e['to']}", e["reason"]))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4] for r in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the commands


def _model_name_and_client(args: argparse.Namespace) -> tuple[str, Any]:
    from pathlib import Path

    from stages.common.params import load_section
    from stages.register import RegisterParams

    p = (
        load_section("register", RegisterParams, args.params)
        if args.name is None or Path(args.params).is_file()
        else None
    )
    name = args.name or p.model_name
    retries, backoff = (p.retries, p.backoff_s) if p else (3, 1.0)
    return name, connect(tracking_uri(), retries, backoff)


def _run(fn: Any, args: argparse.Namespace) -> int:
    from stages.common.params import ParamsError

    try:
        return fn(args)
    except (RegistryError, TrackingUnavailable, ParamsError) as exc:
        print(f"ftpipe {args.command}: {exc}", file=sys.stderr)
        return 2


def _cmd_promote(args: argparse.Namespace) -> int:
    def go(args: argparse.Namespace) -> int:
        name, client = _model_name_and_client(args)
        ev = promote(client, name, args.version, args.reason)
        note = (
            "" if ev["gate"] in ("promote", "unknown") else f" (overruling the gate's verdict: {ev['gate']})"
        )
        print(f"{name}: champion {ev['from'] or '-'} -> {ev['to']}{note}; by {ev['who']}: {ev['reason']}")
        return 0

    return _run(go, args)


def _cmd_rollback(args: argparse.Namespace) -> int:
    def go(args: argparse.Namespace) -> int:
        name, client = _model_name_and_client(args)
        ev = rollback(client, name, args.reason)
        print(f"{name}: rolled back champion {ev['from']} -> {ev['to']}; by {ev['who']}: {ev['reason']}")
        return 0

    return _run(go, args)


def _cmd_history(args: argparse.Namespace) -> int:
    def go(args: argparse.Namespace) -> int:
        from mlflow.exceptions import MlflowException

        name, client = _model_name_and_client(args)
        try:
            events = read_history(client, name)
        except MlflowException:
            raise RegistryError(
                f"no registered model `{name}` at {tracking_uri()}; run the pipeline first."
            ) from None
        champ = champion_version(client, name)
        try:
            chall = str(client.get_model_version_by_alias(name, CHALLENGER).version)
        except MlflowException:
            chall = None
        if args.json:
            print(
                json.dumps(
                    {"name": name, "champion": champ, "challenger": chall, "history": events}, indent=2
                )
            )
        else:
            print(f"{name}\n" + format_history(events, champ, chall))
        return 0

    return _run(go, args)


def add_commands(sub: Any) -> None:
    """`ftpipe promote`, `ftpipe rollback` and `ftpipe history`."""

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--name", help="registered model (default: register.model_name in the params file)")
        p.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")

    p = sub.add_parser(
        "promote",
        help="make a model version the champion, with a reason",
        description="Point models:/NAME@champion at VERSION and record who, when and why.",
    )
    p.add_argument("version", help="the model version number")
    p.add_argument("--reason", required=True, help="why (kept in the registry's history)")
    common(p)
    p.set_defaults(func=_cmd_promote)

    r = sub.add_parser(
        "rollback",
        help="return the champion to the previous one, with a reason",
        description="Point @champion back at the champion before the current one.",
    )
    r.add_argument("--reason", required=True, help="why (kept in the registry's history)")
    common(r)
    r.set_defaults(func=_cmd_rollback)

    h = sub.add_parser(
        "history", help="print the champion history (who, when, why, from which version to which)"
    )
    h.add_argument("--json", action="store_true", help="machine-readable output")
    common(h)
    h.set_defaults(func=_cmd_history)
