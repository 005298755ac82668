"""reports/registry.json, written by `stages/register.py`: what the registry holds after the run.

The summary reads the action, the version and its aliases, the champion and the gate's decision with
its checks; the hashes, timings, notes and the gate's comparison figures stay extras.
"""

from __future__ import annotations

from stages.reports.base import ReportModel


class GateCheck(ReportModel):
    """One gate check (`stages.gate.checks.Check`); its value and threshold stay extras."""

    name: str
    outcome: str  # pass | fail | warn | skip
    reason: str


class GateRecord(ReportModel):
    """The gate's decision as stored on the version (`Decision.as_dict()`)."""

    promote: bool
    checks: list[GateCheck]


class RegistryReport(ReportModel):
    """reports/registry.json."""

    action: str  # registered | unchanged
    name: str
    version: str
    run_id: str | None
    aliases: list[str]
    champion: str | None  # the champion's version after the run
    promoted: bool
    gate: GateRecord | None  # None: a version registered without a stored decision
