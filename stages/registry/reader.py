"""Reading the registry without the served model's code: versions, aliases, and what a version records.

    record = RegistryReader.connect(tracking_uri(), "ftpipe-bbc-news").champion_record()
    record.labels, record.trained_on, record.profile    # None where the version has none (see notes)

The drift stage needs only this (the champion's data profile and trained-on record), so it does not
depend on the code that logs and loads models; `Registry` (stages/registry/client.py) is this plus
registering, loading, aliases and the champion history. Every request goes through `_call`: the retry
and timeout policy of stages/registry/tracking.py.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TypeVar

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from stages.config.register import RetryPolicy
from stages.data.trained_on import TrainedOn
from stages.registry import tags as registry_tags
from stages.registry.history import canonical_version
from stages.registry.smoke import SmokeRecord
from stages.registry.tracking import RegistryError, connect, describe_failure, is_transient, with_retries

R = TypeVar("R")


@dataclass
class VersionRecord:
    """What a registered version says about itself: labels, what it trained on, its data profile."""

    version: str
    run_id: str | None
    labels: list[str] | None
    trained_on: TrainedOn | None
    profile: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)  # why a record or the profile is missing


class RegistryReader:
    """One registered model in one MLflow store, read only: its versions, aliases and version records."""

    def __init__(self, client: MlflowClient, name: str, uri: str, policy: RetryPolicy = RetryPolicy()):
        self.client, self.name, self.uri, self.policy = client, name, uri, policy

    @classmethod
    def connect(cls, uri: str, name: str, policy: RetryPolicy = RetryPolicy()) -> Self:
        """Reach the store at `uri` (under `policy`) for the registered model `name`."""
        return cls(connect(uri, policy), name, uri, policy)

    def _call(self, fn: Callable[[], R]) -> R:
        """Every MLflow request of this class goes through here: one retry and timeout policy."""
        return with_retries(fn, self.uri, self.policy, retry_if=is_transient)

    # ------------------------------------------------------------------ versions and aliases

    def version(self, version: str) -> ModelVersion:
        """Version `version` ("01", " 1" mean 1: `canonical_version`); RegistryError when there is none."""
        version = canonical_version(version)
        try:
            return self._call(lambda: self.client.get_model_version(self.name, version))
        except MlflowException:
            raise RegistryError(
                f"registered model `{self.name}` has no version {version}; "
                "`ftpipe history --versions` lists the versions."
            ) from None

    def alias(self, alias: str) -> str | None:
        """The version behind `@alias`, or None (no model, or no such alias yet)."""
        try:
            return str(self._call(lambda: self.client.get_model_version_by_alias(self.name, alias)).version)
        except MlflowException:
            return None

    def champion(self) -> str | None:
        return self.alias(registry_tags.CHAMPION)

    def challenger(self) -> str | None:
        return self.alias(registry_tags.CHALLENGER)

    # ------------------------------------------------------------------ records of a version

    def _artifact(self, run_id: str, path: str) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            local = self._call(lambda: self.client.download_artifacts(run_id, path, tmp))
            return Path(local).read_bytes()

    def artifact(self, run_id: str, path: str) -> bytes:
        """The bytes of run `run_id`'s artifact `path` (`ftpipe gate` reads a version's reports back)."""
        return self._artifact(run_id, path)

    def record(self, version: str) -> VersionRecord:
        """Labels, trained-on record and data profile of `version`; a missing one is noted, not raised."""
        mv = self.version(version)
        tags, run_id = mv.tags, mv.run_id
        labels = json.loads(tags[registry_tags.LABELS]) if registry_tags.LABELS in tags else None
        rec = VersionRecord(str(mv.version), run_id, labels, None, None)
        if registry_tags.TRAINED_ON not in tags or not run_id:
            rec.notes.append(
                f"version {mv.version} has no record of what it trained on (registered before ftpipe kept one)"
            )
        else:
            try:
                rec.trained_on = TrainedOn.from_bytes(self._artifact(run_id, tags[registry_tags.TRAINED_ON]))
            except (MlflowException, OSError, ValueError) as exc:
                rec.notes.append(
                    f"version {mv.version}'s trained-on record could not be read: {describe_failure(exc)}"
                )
        if registry_tags.PROFILE not in tags or not run_id:
            rec.notes.append(f"version {mv.version} has no stored data profile")
        else:
            try:
                rec.profile = json.loads(self._artifact(run_id, tags[registry_tags.PROFILE]))
            except (MlflowException, OSError, ValueError) as exc:
                rec.notes.append(
                    f"version {mv.version}'s data profile could not be read: {describe_failure(exc)}"
                )
        return rec

    def smoke_record(self, version: str) -> SmokeRecord | None:
        """The predictions `version` recorded at registration (stages/registry/smoke.py), or None when it
        has none (registered before ftpipe recorded them); ValueError when the record cannot be read."""
        mv = self.version(version)
        if registry_tags.SMOKE not in mv.tags or not mv.run_id:
            return None
        run_id, path = mv.run_id, mv.tags[registry_tags.SMOKE]
        what = f"version {mv.version}'s smoke record ({path})"
        try:
            return SmokeRecord.from_json(self._artifact(run_id, path), what)
        except (MlflowException, OSError) as exc:
            raise ValueError(f"{what} could not be read: {describe_failure(exc)}") from None

    def champion_record(self) -> VersionRecord | None:
        """The champion's record (labels, trained-on, profile), or None when there is no champion."""
        champ = self.champion()
        return None if champ is None else self.record(champ)
