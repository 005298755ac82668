"""Drift against the champion, checked by the retrain flow right after `validate` and before training.

The validate stage is pure (it never reads the registry), so the comparison with the champion's data
lives here: the new compact profile (`data/processed/profile.json`) against the profile and trained-on
record stored with the `champion` version, through the same pure functions and the same gate check that
register applies (`stages.data.drift.compare_profiles`, `stages.gate.checks.drift_check`). A batch that
fails it (only when `register.gate.max_drift_auc` is set) costs no training.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from stages.config.params import read_params_file, validate_section
from stages.data.drift import compare_profiles
from stages.gate.checks import drift_check
from stages.registry.client import RegisterParams, Registry
from stages.registry.tracking import tracking_uri

PROFILE_FILE = "profile.json"  # the compact profile among the validate stage's declared outputs


def stale(repo: Path, stages: list[str]) -> bool:
    """True when DVC would run any of `stages` (`dvc status --json`, which lists changed stages)."""
    if not stages:
        return False
    proc = subprocess.run(
        ["dvc", "status", "--json", *stages], cwd=repo, capture_output=True, text=True, check=False
    )
    try:
        return bool(json.loads(proc.stdout or "{}"))
    except ValueError:
        return True  # cannot tell: check rather than skip


def check_drift(repo: Path, profile_path: Path) -> dict[str, Any]:
    """Compare the new profile with the champion's; return the check (outcome, reason) and the figures."""
    params = validate_section(
        "register", read_params_file(repo / "params.yaml").get("register"), RegisterParams
    )
    if not profile_path.is_file():
        return {"outcome": "skip", "reason": f"no profile at {profile_path} (validate did not pass)"}
    profile = json.loads(profile_path.read_text(encoding="utf-8"))
    registry = Registry.connect(tracking_uri(repo), params.model_name, params.policy())
    record = registry.champion_record()
    if record is None:
        return {"outcome": "skip", "reason": f"`{params.model_name}` has no champion yet: nothing to compare"}
    if record.profile is None:
        reason = "; ".join(record.notes) or f"champion v{record.version} has no stored profile"
        return {"outcome": "skip", "reason": reason, "champion": record.version}
    figures = compare_profiles(record.profile, profile, record.trained_on)
    check = drift_check(figures, params.gate)
    return {
        "outcome": check.outcome,
        "reason": check.reason,
        "champion": record.version,
        "label_js": figures.get("label_js"),
        "length_js": figures.get("length_js"),
        "domain_auc": figures.get("domain_auc"),
        "texts": figures.get("texts"),
    }
