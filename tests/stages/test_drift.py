"""The drift stage: its pure core (pass, warn, fail, skip) on in-memory profiles, and its entry point on a
real local registry, or none: a machine with no registry store gets `skip` and still no `mlflow.db`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from stages.config.register import GateParams, RegisterParams
from stages.drift import DriftError, assess, failure_message, local_store, main, read_champion
from stages.registry.reader import VersionRecord
from stages.reports.profile import DataProfile
from tests.conftest import make_corpus
from tests.factories import register_version
from tests.registry_support import make_profile
from tests.stages.data.test_drift import cooking_rows, split

NAME = "drift-test"


def champion_profile() -> dict:
    return make_profile(split(make_corpus(n_per_class=40, seed=3), "a-"))


def record(profile: dict | None, version: str = "1", notes: list[str] | None = None) -> VersionRecord:
    return VersionRecord(version, "run-1", ["business", "sport", "tech"], None, profile, notes or [])


# ------------------------------------------------------------------------------ the pure core


def test_data_like_the_champions_passes() -> None:
    p = RegisterParams(model_name=NAME)
    candidate = DataProfile.model_validate(make_profile(split(make_corpus(n_per_class=40, seed=4), "b-")))
    report = assess(candidate, record(champion_profile()), p)
    assert report["outcome"] == "pass" and report["champion"] == "1", report
    assert 0.3 < report["domain_auc"] < 0.7 and report["texts"]["candidate_new"] == 100
    assert "domain AUC" in report["reason"]
    assert report["params"] == {
        "register.model_name": NAME,
        "register.gate.warn_drift_auc": 0.75,
        "register.gate.max_drift_auc": None,
    }
    json.dumps(report)  # what the stage writes


def test_data_from_another_domain_warns_and_fails_only_under_a_cap() -> None:
    candidate = DataProfile.model_validate(make_profile(split(cooking_rows(120), "b-")))
    warned = assess(candidate, record(champion_profile()), RegisterParams(model_name=NAME))
    assert warned["outcome"] == "warn" and "register.gate.warn_drift_auc" in warned["reason"]
    capped = RegisterParams(model_name=NAME, gate=GateParams(max_drift_auc=0.8))
    failed = assess(candidate, record(champion_profile()), capped)
    assert failed["outcome"] == "fail" and failed["domain_auc"] > 0.95
    assert failed["params"]["register.gate.max_drift_auc"] == 0.8
    message = failure_message(failed, "reports/drift.json")
    assert "champion v1" in message and "register.gate.max_drift_auc = 0.8" in message
    assert "reports/drift.json" in message and "set it to null" in message


def test_no_champion_or_no_stored_profile_skips_with_the_reason() -> None:
    p = RegisterParams(model_name=NAME)
    profile = DataProfile.model_validate(champion_profile())
    none = assess(profile, None, p)
    assert none["outcome"] == "skip" and none["champion"] is None
    assert none["reason"] == f"`{NAME}` has no champion yet: nothing to compare"
    old = assess(profile, record(None, "3", ["version 3 has no stored data profile"]), p)
    assert old["outcome"] == "skip" and old["champion"] == "3" and old["domain_auc"] is None
    assert "version 3 has no stored data profile" in old["reason"]


# ------------------------------------------------------------------------------ the registry, or none


def test_no_registry_store_skips_and_creates_none(tmp_path: Path) -> None:
    p = RegisterParams(model_name=NAME)
    for uri, store in (
        (f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "mlflow.db"),
        ((tmp_path / "mlruns").as_uri(), tmp_path / "mlruns"),
    ):
        assert local_store(uri) == store
        champion, why = read_champion(uri, p)
        assert champion is None and why.startswith(f"no registry store at {store} yet"), why
        assert not store.exists()
    assert local_store("http://user:pw@host:5000") is None  # a server: asked, never assumed


def test_the_entry_point_skips_without_a_store_and_creates_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`python -m stages.drift` on a machine that never registered anything: `mlflow.db` at the root."""
    monkeypatch.setattr(sys, "stdout", sys.stdout)  # restored after: main() masks both streams
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))  # the repository root, as `dvc repro` says it
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(f"register:\n  model_name: {NAME}\n")
    (tmp_path / "profile.json").write_text(json.dumps(champion_profile()))
    main(["--profile", "profile.json", "--report", "reports/drift.json"])
    report = json.loads((tmp_path / "reports" / "drift.json").read_text())
    assert report["outcome"] == "skip" and report["champion"] is None
    assert report["reason"].startswith("no registry store at mlflow.db yet"), report["reason"]
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()

    (tmp_path / "profile.json").unlink()
    with pytest.raises(DriftError, match=r"no data profile at profile\.json\. .*dvc repro validate"):
        main(["--profile", "profile.json", "--report", "reports/drift.json"])


def test_a_champion_in_a_local_store_is_compared(
    sqlite_store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The entry point against a real SQLite registry: a fail is written first, then stops the stage."""
    uri = sqlite_store
    register_version(uri, NAME, profile=champion_profile())  # champion, its profile stored as register does
    p = RegisterParams(model_name=NAME)
    champion, why = read_champion(uri, p)
    assert champion is not None and champion.version == "1" and champion.profile == champion_profile()
    assert why == ""
    _, why = read_champion(uri, RegisterParams(model_name="another"))
    assert why == "`another` has no champion yet: nothing to compare"

    monkeypatch.setattr(sys, "stdout", sys.stdout)
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(
        f"register:\n  model_name: {NAME}\n  gate:\n    max_drift_auc: 0.8\n"
    )
    (tmp_path / "profile.json").write_text(json.dumps(make_profile(split(cooking_rows(120), "b-"))))
    with pytest.raises(DriftError, match="differs from champion v1's beyond register.gate.max_drift_auc"):
        main(["--profile", "profile.json", "--report", "drift.json"])
    report = json.loads((tmp_path / "drift.json").read_text())
    assert report["outcome"] == "fail" and report["champion"] == "1"
