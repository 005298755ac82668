"""The one way tests register a tiny model: a fresh SQLite tracking store, and versions in it.

`new_store(root)` makes a store (the `sqlite_store` fixture of tests/conftest.py: one under tmp_path).
`register_version` adds a version holding what a test needs of it: a few small files (the registry
commands only move aliases and copy files), a pyfunc from source code (predict runs it), or no model at
all (drift reads only the data profile); with the manifest, tags, profile and aliases register records.
`register_candidate` registers a real tiny BERT (tests/registry_support.py's Workspace) through the
register stage's own `register`, for the tests of what the pipeline itself logs and serves.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient

from stages.config.register import GateParams, RegisterParams
from stages.gate.checks import Candidate
from stages.registry import tags as registry_tags
from stages.registry.inputs import load_candidate, trained_on_from_splits
from stages.registry.integrity import downloaded_manifest
from stages.registry.register_run import register
from stages.registry.tracking import default_artifact_location
from stages.serving import manifest
from tests.conftest import REPO
from tests.registry_support import Workspace

TINY_FILES = {"config.json": '{"tiny": true}\n', "weights.txt": "0.1 0.2 0.3\n"}  # a two-file model
# a gate every candidate passes, the constant model too
OPEN_GATE = GateParams(min_primary=0.0, baseline_tolerance=1.0, baseline_margin=-1.0)


def new_store(root: Path) -> str:
    """The URI of a SQLite tracking store in `root` (made on first use; artifacts beside it)."""
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}"


def register_version(
    uri: str,
    name: str,
    *,
    files: dict[str, str] | None = None,
    code: str | None = None,
    model_config: dict[str, Any] | None = None,
    profile: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
    aliases: Iterable[str] = (registry_tags.CHAMPION,),
) -> str:
    """A new version of `name` in the store at `uri` (the model and its experiment made on first use), in
    a run of its own; its number.

    The model is `files` ({name: text}) or the pyfunc `code` (models from code, with `model_config`),
    recorded with its manifest as register records it; with neither, the version has no model files.
    `profile` is stored as register stores a data profile.
    """
    client = MlflowClient(uri, registry_uri=uri)
    found = client.get_experiment_by_name(name)
    experiment = (
        found.experiment_id
        if found
        else client.create_experiment(name, artifact_location=default_artifact_location(uri, name))
    )
    run = client.create_run(experiment)
    tags = dict(tags or {})
    with tempfile.TemporaryDirectory() as tmp:
        if profile is not None:
            local = Path(tmp) / registry_tags.PROFILE_ARTIFACT
            local.write_text(json.dumps(profile), encoding="utf-8")
            client.log_artifact(run.info.run_id, str(local))
            tags[registry_tags.PROFILE] = registry_tags.PROFILE_ARTIFACT
        if code is not None:
            version, files_manifest = _log_code(uri, run.info.run_id, name, code, model_config, Path(tmp))
            tags[registry_tags.MANIFEST] = manifest.dumps(files_manifest)
        else:
            if files is not None:
                folder = Path(tmp) / "model"
                folder.mkdir()
                for file, text in files.items():
                    (folder / file).write_text(text)
                client.log_artifacts(run.info.run_id, str(folder), "model")
                tags[registry_tags.MANIFEST] = manifest.dumps(manifest.tree_manifest(folder))
            if not client.search_registered_models(f"name = '{name}'"):
                client.create_registered_model(name)
            source = f"{run.info.artifact_uri}/model"
            version = str(client.create_model_version(name, source, run.info.run_id).version)
    client.set_terminated(run.info.run_id)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    for alias in aliases:
        client.set_registered_model_alias(name, alias, version)
    return version


def _log_code(
    uri: str, run_id: str, name: str, code: str, model_config: dict[str, Any] | None, tmp: Path
) -> tuple[str, dict[str, str]]:
    """The pyfunc `code` logged into run `run_id` and registered as `name`: its version and the manifest
    of its files as the store gives them back."""
    path = tmp / f"{name}_model.py"
    path.write_text(code)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        with mlflow.start_run(run_id=run_id):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(path),
                registered_model_name=name,
                pip_requirements=["mlflow"],
                model_config=model_config,
            )
        return str(info.registered_model_version), downloaded_manifest(info.model_uri)


def register_candidate(
    uri: str,
    ws: Workspace,
    name: str,
    truncation: dict[str, Any],
    *,
    kind: str = "constant",
    sections: dict[str, Any] | None = None,
    **kw: Any,
) -> tuple[dict[str, Any], Candidate]:
    """`ws`'s tiny BERT of `kind` and its evaluate outputs registered as `name` by the register stage's
    own `register` (OPEN_GATE, no retries, 8 rows verified, trained on `ws`'s splits; `sections` are
    params logged beside register's, `kw` more of register's arguments); its report and candidate."""
    paths = ws.candidate(kind, kind)
    cand = load_candidate(
        paths["model"], paths["metrics"], paths["predictions"], paths["splits"], paths["labels"]
    )
    p = RegisterParams(model_name=name, gate=OPEN_GATE, retries=0, verify_rows=8)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        report = register(
            p,
            cand,
            uri,
            params={"register": p.model_dump(), **(sections or {})},
            truncation=truncation,
            trained_on=trained_on_from_splits(ws.splits),
            repo=REPO,
            **kw,
        )
    return report, cand
