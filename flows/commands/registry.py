"""`ftpipe promote | gate | rollback | history | fetch`: move the `champion` alias, with an audit trail.

    ftpipe promote 3 --reason "validated on the March sample"
    ftpipe gate 1                              # re-judge v1 under params.yaml's register.gate
    ftpipe card 1                              # v1's whole model card (default: the champion)
    ftpipe rollback --reason "v3 mislabels sport headlines"
    ftpipe history
    ftpipe history --versions
    ftpipe fetch champion served/champion      # a copy checked against the registry's manifest, to serve

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
from collections.abc import Callable
from typing import TYPE_CHECKING, TypedDict

from stages.core.notify import notify

if TYPE_CHECKING:
    from stages.registry.client import Registry
    from stages.registry.history import HistoryEvent

# stages.registry.client imports MLflow (about 2 s): the commands import it when they run, so that
# `ftpipe --help` and the other commands stay fast


class VersionRow(TypedDict):
    """One line of `ftpipe history --versions` (and of its --json `versions`)."""

    version: str
    registered: str  # UTC, to the minute
    status: str | None  # ftpipe.status
    gate: str | None  # the gate's decision
    test_accuracy: float | None
    test_macro_f1: float | None
    aliases: list[str]


def format_history(events: list[HistoryEvent], champion: str | None, challenger: str | None) -> str:
    """The history as a table a person reads, newest last (pure)."""
    lines = [f"champion: {champion or '-'}   challenger: {challenger or '-'}", ""]
    if not events:
        return "\n".join(lines + ["no champion changes recorded yet"])
    rows = [("when", "who", "action", "from -> to", "why")]
    for e in events:
        action = e["action"] + (" (not applied)" if e.get("not_applied") or e.get("pending") else "")
        rows.append((e["at"], e["who"], action, f"{e['from'] or '-'} -> {e['to']}", e["reason"]))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4] for r in rows]
    return "\n".join(lines)


def format_versions(versions: list[VersionRow]) -> str:
    """Every version as a table, oldest first: when, status, the gate's decision, test metrics, aliases (pure)."""
    if not versions:
        return "no versions registered yet"
    rows = [("version", "registered", "status", "gate", "test accuracy", "test macro_f1", "aliases")]
    for v in versions:
        rows.append(
            (
                v["version"],
                v["registered"],
                v["status"] or "-",
                v["gate"] or "-",
                "-" if v["test_accuracy"] is None else f"{v['test_accuracy']:.4f}",
                "-" if v["test_macro_f1"] is None else f"{v['test_macro_f1']:.4f}",
                ", ".join(v["aliases"]) or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def list_versions(reg: Registry) -> list[VersionRow]:
    """Each version's number, registration time (UTC), ftpipe status, gate decision, test metrics, aliases."""
    from datetime import datetime, timezone

    from stages.registry import tags as registry_tags

    by_alias = {a: reg.alias(a) for a in (registry_tags.CHAMPION, registry_tags.CHALLENGER)}
    out: list[VersionRow] = []
    for mv in reg.versions():
        metrics = reg.run_metrics(mv.run_id) if mv.run_id else {}
        when = datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=timezone.utc)
        aliases = set(mv.aliases or ()) | {a for a, v in by_alias.items() if v == str(mv.version)}
        out.append(
            {
                "version": str(mv.version),
                "registered": when.strftime("%Y-%m-%d %H:%M"),
                "status": mv.tags.get(registry_tags.STATUS),
                "gate": mv.tags.get(registry_tags.GATE_DECISION),
                "test_accuracy": metrics.get("test.accuracy"),
                "test_macro_f1": metrics.get("test.macro_f1"),
                "aliases": sorted(aliases),
            }
        )
    return out


# --------------------------------------------------------------------------- the commands


def _registry(args: argparse.Namespace) -> Registry:
    """The Registry for `--name` (else `register.model_name` of the params file), with its retry policy."""
    from pathlib import Path

    from stages.config.params import load_section
    from stages.config.register import RegisterParams
    from stages.registry.client import Registry
    from stages.registry.tracking import tracking_uri

    p = (
        load_section("register", RegisterParams, args.params)
        if args.name is None or Path(args.params).is_file()
        else None
    )
    p = p or RegisterParams()
    name = args.name or p.model_name
    return Registry.connect(tracking_uri(), name, p.policy())


def _run(fn: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    from mlflow.exceptions import MlflowException

    from stages.config.params import ParamsError
    from stages.core.redact import mask_secrets
    from stages.registry.tracking import RegistryError, TrackingUnavailable

    try:
        return fn(args)
    except (RegistryError, TrackingUnavailable, ParamsError, MlflowException) as exc:
        print(f"ftpipe {args.command}: {mask_secrets(str(exc))}", file=sys.stderr)
        return 2


def _cmd_promote(args: argparse.Namespace) -> int:
    def go(args: argparse.Namespace) -> int:
        from stages.registry.history import canonical_version

        reg = _registry(args)
        ev = reg.promote(args.version, args.reason)
        if ev is None:  # no alias move and no history event
            print(
                f"{reg.name}: version {canonical_version(args.version)} is already the champion; nothing changed"
            )
            return 0
        note = (
            "" if ev["gate"] in ("promote", "unknown") else f" (overruling the gate's verdict: {ev['gate']})"
        )
        said = f"{reg.name}: champion {ev['from'] or '-'} -> {ev['to']}{note}; by {ev['who']}: {ev['reason']}"
        print(said)
        notify(f"ftpipe: {reg.name} version {ev['to']} promoted", said)
        return 0

    return _run(go, args)


def _cmd_gate(args: argparse.Namespace) -> int:
    def go(args: argparse.Namespace) -> int:
        from pathlib import Path

        from stages.config.params import load_section
        from stages.config.register import RegisterParams
        from stages.registry.regate import regate

        reg = _registry(args)
        gate = load_section("register", RegisterParams, args.params).gate
        decision, event = regate(reg, gate, args.version, args.reason, Path(args.splits))
        verdict = "promote" if decision.promote else "reject"
        for c in decision.checks:
            print(f"  {c.name:<22} {c.outcome:<5} {c.reason}")
        if event is None:
            print(
                f"{reg.name}: version {args.version} is already the champion ({verdict} under {args.params}); nothing changed"
            )
        elif decision.promote:
            print(
                f"{reg.name}: version {event['to']} passes the gate of {args.params}: champion {event['from'] or '-'} -> {event['to']}; by {event['who']}"
            )
        else:
            print(
                f"{reg.name}: version {event['to']} is still rejected under {args.params} (champion stays "
                f"{event['from'] or '-'}); recorded in `ftpipe history`. Change register.gate there and run "
                f"`ftpipe gate {event['to']}` again, or `ftpipe promote {event['to']} --reason ...` to overrule it"
            )
        return 0

    return _run(go, args)


def _cmd_card(args: argparse.Namespace) -> int:
    def go(args: argparse.Namespace) -> int:
        from stages.registry import tags as registry_tags
        from stages.registry.tracking import RegistryError

        reg = _registry(args)
        if args.version is not None:
            version = reg.resolve(args.version)
        else:  # the champion, else the newest version
            numbers = [int(mv.version) for mv in reg.versions()]
            if not numbers:
                raise RegistryError(f"registered model `{reg.name}` has no versions yet; run the pipeline.")
            version = reg.champion() or str(max(numbers))
        mv = reg.version(version)
        try:
            card = reg.artifact(str(mv.run_id), registry_tags.MODEL_CARD_ARTIFACT).decode("utf-8")
        except Exception as exc:
            raise RegistryError(
                f"version {version} has no readable {registry_tags.MODEL_CARD_ARTIFACT} in its run "
                f"({type(exc).__name__}); its description holds the card's first part."
            ) from None
        sys.stdout.write(card if card.endswith("\n") else card + "\n")
        return 0

    return _run(go, args)


def _cmd_rollback(args: argparse.Namespace) -> int:
    def go(args: argparse.Namespace) -> int:
        reg = _registry(args)
        ev = reg.rollback(args.reason)
        said = f"{reg.name}: rolled back champion {ev['from']} -> {ev['to']}; by {ev['who']}: {ev['reason']}"
        print(said)
        notify(f"ftpipe: {reg.name} rolled back to version {ev['to']}", said)
        return 0

    return _run(go, args)


def _cmd_history(args: argparse.Namespace) -> int:
    def go(args: argparse.Namespace) -> int:
        reg = _registry(args)
        events = reg.history()
        champ, chall = reg.champion(), reg.challenger()
        versions = list_versions(reg) if args.versions else None
        if args.json:
            doc = {"name": reg.name, "champion": champ, "challenger": chall, "history": events}
            print(json.dumps({**doc, "versions": versions} if versions is not None else doc, indent=2))
        else:
            print(f"{reg.name}\n" + format_history(events, champ, chall))
            if versions is not None:
                print("\n" + format_versions(versions))
        return 0

    return _run(go, args)


def _cmd_fetch(args: argparse.Namespace) -> int:
    def go(args: argparse.Namespace) -> int:
        from pathlib import Path

        from stages.core.io import DiskFull
        from stages.serving.manifest import ManifestError

        reg = _registry(args)
        version = reg.resolve(args.version)
        try:
            n = reg.fetch(version, Path(args.dest))
        except (ManifestError, DiskFull) as exc:
            print(f"ftpipe fetch: {exc}", file=sys.stderr)
            return 2
        print(
            f"{reg.name} version {version}: all {n} files match the manifest recorded at registration, in "
            f"{args.dest}. Serve this copy: mlflow models serve -m {args.dest} --env-manager local "
            "--host 127.0.0.1 --port 5001"
        )
        return 0

    return _run(go, args)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", help="registered model (default: register.model_name in the params file)")
    p.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`ftpipe promote`, `ftpipe gate`, `ftpipe card`, `ftpipe rollback`, `ftpipe history` and `ftpipe fetch`."""
    _add_moves(sub)
    _add_reads(sub)


def _add_moves(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The commands that move the champion: promote, gate, rollback."""
    p = sub.add_parser(
        "promote",
        help="make a model version the champion, with a reason",
        description="Point models:/NAME@champion at VERSION and record who, when and why.",
    )
    p.add_argument("version", help="the model version number")
    p.add_argument("--reason", required=True, help="why (kept in the registry's history)")
    _common(p)
    p.set_defaults(func=_cmd_promote)

    g = sub.add_parser(
        "gate",
        help="re-judge a registered version under the params file's register.gate (champion if it passes)",
        description="Run the gate again on VERSION with the current register.gate of the params file, from "
        "what the version recorded at registration, against the champion of now; record the verdict in the "
        "history (who, when, why) and make it the champion if it passes.",
    )
    g.add_argument("version", help="the model version number")
    g.add_argument(
        "--reason", default="re-judged under the current register.gate", help="why (kept in the history)"
    )
    g.add_argument(
        "--splits",
        default="data/processed/splits",
        help="the test split's texts, to score a champion on (default data/processed/splits)",
    )
    _common(g)
    g.set_defaults(func=_cmd_gate)

    r = sub.add_parser(
        "rollback",
        help="return the champion to the previous one, with a reason",
        description="Point @champion back at the champion before the current one.",
    )
    r.add_argument("--reason", required=True, help="why (kept in the registry's history)")
    _common(r)
    r.set_defaults(func=_cmd_rollback)


def _add_reads(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The commands that read the registry: card, history, fetch."""
    c = sub.add_parser(
        "card",
        help="print a version's full model card (default: the champion, else the newest version)",
        description="Print the model card logged with VERSION (model_card.md), whole: MLflow's version "
        "description holds only its first 4,900 characters.",
    )
    c.add_argument("version", nargs="?", default=None, help="a version number or an alias")
    _common(c)
    c.set_defaults(func=_cmd_card)

    h = sub.add_parser(
        "history",
        help="print the champion history (who, when, why, from which version to which); --versions lists versions",
    )
    h.add_argument("--json", action="store_true", help="machine-readable output")
    h.add_argument(
        "--versions",
        action="store_true",
        help="also list every version: status, gate decision, test metrics, aliases",
    )
    _common(h)
    h.set_defaults(func=_cmd_history)

    f = sub.add_parser(
        "fetch",
        help="download a registered version whose files all match its manifest (a copy to serve)",
        description="Download VERSION (a number or an alias) to DEST only if every file matches the "
        "manifest recorded at registration; a mismatch names each file and leaves nothing behind.",
    )
    f.add_argument("version", help="the model version number, or an alias (champion, challenger)")
    f.add_argument("dest", help="a new folder for the checked copy")
    _common(f)
    f.set_defaults(func=_cmd_fetch)
