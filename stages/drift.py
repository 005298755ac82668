"""drift: the new data against the champion's, after validate and before a single step of training.

    python -m stages.drift --profile data/processed/profile.json --report reports/drift.json

validate reads only the pipeline's own data; this stage compares its compact profile with the profile
and trained-on record stored with the registered model's `champion` version, through the same pure
functions and gate check that register applies at registration (`stages.data.drift.compare_profiles`,
`stages.gate.checks.drift_check`, under `register.gate.warn_drift_auc` and `max_drift_auc`). It writes
`reports/drift.json`: the outcome (pass | warn | fail | skip), its reason, the champion version compared
with, the figures (label and token-length JS distances, domain-classifier AUC, sample sizes) and the
params that decided it. With no champion, or no registry store at all (no `mlflow.db` yet: it is not
created just to look), the outcome is `skip`, with why. A `fail` (only when `register.gate.max_drift_auc`
is set) writes the report, then stops the stage with the reason, so finetune, which depends on the
report, never trains on it; `dvc repro` and `ftpipe run` stop alike.

Why the stage is not `always_changed`: the champion lives in the MLflow registry, outside DVC's view, and
no file DVC could hash names it before this stage runs (register's report comes after finetune; an edge
back would be a cycle). An always-run stage would compare the data with whichever model is champion now,
and after a promotion that is the model trained on this very data: the report would change (another
champion, other figures, no new texts to compare) and finetune, which depends on it, would train again
on unchanged data after every promotion. So, like any DVC stage, it runs when what it judges changes:
the profile (new data), its code or its params; the report names the champion it was compared with,
and a no-op `dvc repro` runs nothing. A new champion on the same data leaves nothing new to train on,
and register compares each candidate with the champion of the moment anyway. To see how the current
data compares with a new champion without touching the pipeline: `python -m stages.drift --report
/tmp/drift.json`; `dvc repro --force --single-item drift` records it instead, and then the next `dvc
repro` retrains, since finetune depends on the report. DVC's run cache may restore an earlier report
for a profile it has seen before (with the model trained on it): it still names the champion it used.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NotRequired, TypedDict
from urllib.parse import urlsplit

from stages.config.params import load_section
from stages.config.paths import add_path_args
from stages.config.register import RegisterParams
from stages.core.io import read_json, write_json
from stages.core.logs import setup_logging
from stages.core.notify import notify
from stages.core.redact import mask_output
from stages.data.drift import compare_profiles
from stages.gate.checks import drift_check
from stages.registry.reader import RegistryReader, VersionRecord
from stages.registry.tracking import tracking_uri
from stages.reports.drift import DriftReport
from stages.reports.profile import DataProfile, as_profile

FIGURE_DIGITS = 6  # rounded in the report: last-digit float noise between machines changes no byte of it


class Assessment(TypedDict):
    """reports/drift.json as `assess` builds it (DriftReport reads it): the outcome, the figures (rounded;
    None where nothing was compared), the params that decided it."""

    outcome: str  # pass | warn | fail | skip
    reason: str
    champion: str | None
    label_js: float | None
    length_js: float | None
    domain_auc: float | None
    domain_classifier: str | None
    texts: dict[str, int] | None
    trained_on_record: bool | None  # None: no champion to compare with
    notes: list[str]
    params: dict[str, str | float | None]
    cardinality_js: NotRequired[float | None]  # label sets (label.task multi_label) only


class DriftError(RuntimeError):
    """The new data failed the drift check, or cannot be checked; the message says what to change."""


def local_store(uri: str) -> Path | None:
    """The file or folder of a local tracking store (`sqlite:///...`, `file:...`, a bare path); None for
    a server or another database, which can only be asked."""
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).expanduser()  # relative: against the cwd, as MLflow
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return Path(parts.path)
    if "://" not in uri and not parts.scheme:
        return Path(uri).expanduser()  # MLflow reads a plain path as a file store
    return None


def _shown(path: Path) -> str:
    """`path` relative to the working directory (the repository root under DVC) when inside it: the
    report is committed, and the same state should read the same on every checkout."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_champion(uri: str, p: RegisterParams) -> tuple[VersionRecord | None, str]:
    """The champion's record (labels, trained-on record, profile), or None and why there is none.

    A local store that does not exist is not created just to look: nothing was ever registered there.
    """
    store = local_store(uri)
    if store is not None and not store.exists():
        return None, (
            f"no registry store at {_shown(store)} yet (nothing registered here; MLFLOW_TRACKING_URI "
            "picks another store): nothing to compare"
        )
    record = RegistryReader.connect(uri, p.model_name, p.policy()).champion_record()
    if record is None:
        return None, f"`{p.model_name}` has no champion yet: nothing to compare"
    return record, ""


def params_used(p: RegisterParams) -> dict[str, str | float | None]:
    """The keys that decide the outcome (dvc.yaml tracks them, with the registry's retry keys)."""
    return {
        "register.model_name": p.model_name,
        "register.gate.warn_drift_auc": p.gate.warn_drift_auc,
        "register.gate.max_drift_auc": p.gate.max_drift_auc,
    }


def _rounded(x: float | None) -> float | None:
    return round(x, FIGURE_DIGITS) if isinstance(x, float) else x


def assess(
    profile: DataProfile, champion: VersionRecord | None, p: RegisterParams, no_champion: str = ""
) -> Assessment:
    """The drift report of `profile` (validate's compact profile) against the champion's stored one.

    Pure: `champion` is the record read from the registry, None when there is none (`no_champion` says
    why). Outcome pass | warn | fail from `drift_check` under `p.gate`; skip when nothing can be compared.
    """
    report: Assessment = {
        "outcome": "skip",
        "reason": no_champion or f"`{p.model_name}` has no champion yet: nothing to compare",
        "champion": None,
        "label_js": None,
        "length_js": None,
        "domain_auc": None,
        "domain_classifier": None,
        "texts": None,
        "trained_on_record": None,
        "notes": [],
        "params": params_used(p),
    }
    if champion is None:
        return report
    report["champion"] = champion.version
    if champion.profile is None:
        stored = "; ".join(champion.notes) or f"version {champion.version} has no stored data profile"
        report["reason"] = f"champion v{champion.version}: {stored}: nothing to compare"
        report["notes"] = list(champion.notes)
        return report
    figures = compare_profiles(champion.profile, profile, champion.trained_on)
    check = drift_check(figures, p.gate)
    report["label_js"] = _rounded(figures["label_js"])
    report["length_js"] = _rounded(figures["length_js"])
    report["domain_auc"] = _rounded(figures["domain_auc"])
    report["domain_classifier"] = figures["domain_classifier"]
    report["texts"] = figures["texts"]
    report["trained_on_record"] = figures["trained_on_record"]
    report["notes"] = figures["notes"]
    report["outcome"], report["reason"] = check.outcome, check.reason
    if "cardinality_js" in figures:  # label sets (label.task multi_label) only
        report["cardinality_js"] = _rounded(figures["cardinality_js"])
    return report


def failure_message(report: Assessment, path: str | Path) -> str:
    """Why the stage stops, and what to change."""
    return (
        f"drift: the new data differs from champion v{report['champion']}'s beyond "
        f"register.gate.max_drift_auc = {report['params']['register.gate.max_drift_auc']}, so nothing was "
        f"trained ({report['reason']}; report: {path}). Look at what changed in the data "
        "(reports/data_profile.json); if the new data is meant to differ, raise register.gate.max_drift_auc "
        "or set it to null (drift then only warns) and run again."
    )


def check(profile_path: str | Path, p: RegisterParams, uri: str) -> Assessment:
    """Read the profile and the champion, and assess; a missing profile is an error naming the fix."""
    profile_path = Path(profile_path)
    if not profile_path.is_file():
        raise DriftError(
            f"drift: no data profile at {profile_path}. validate writes it only when every integrity "
            "check passes: run `dvc repro validate` (or `ftpipe run`) and read reports/data_profile.json "
            "if it fails."
        )
    profile = as_profile(read_json(profile_path))
    if isinstance(profile, str):
        raise DriftError(
            f"drift: {profile_path} is not validate's data profile ({profile}): run `dvc repro validate`."
        )
    champion, why = read_champion(uri, p)
    return assess(profile, champion, p, why)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    add_path_args(ap, "drift")
    args = ap.parse_args(argv)
    mask_output()  # MLflow prints and logs the tracking URI, password included
    log = setup_logging("drift")
    p = load_section("register", RegisterParams, args.params)
    report = check(args.profile, p, tracking_uri())
    typed = DriftReport.model_validate(report)  # what the summary reads
    write_json(args.report, typed.dump())  # before a failure, so its reason is on disk
    against = f" against champion v{typed.champion}" if typed.champion else ""
    log.info("drift%s: %s: %s", against, typed.outcome, typed.reason)
    if typed.outcome in ("warn", "fail"):
        notify(f"ftpipe drift: {typed.outcome}{against}", typed.reason, args.report)
    if typed.outcome == "fail":
        raise DriftError(failure_message(report, args.report))


if __name__ == "__main__":
    main()
