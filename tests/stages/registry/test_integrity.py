"""A registered model is loaded only when every file matches the manifest recorded at registration.

One tiny model is registered in a SQLite store; each test changes its files in the artifact store as
someone with write access to it could (a flipped weights byte, an added `.py`, `config.json` pointing
`auto_map` at a module of the folder, the pyfunc code itself) and checks that every loader refuses it
before any of its code runs (the added code writes a marker file): the Registry (the register stage's
load-back check and the gate's champion scoring), `ftpipe predict` and the served model itself, loaded
from a copy as `mlflow models serve` loads it. evaluate's check of models/model is in test_evaluate.py.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from flows.commands.predict.command import PredictError
from flows.commands.predict.command import load_model as predict_load_model
from stages.config.register import RegisterParams, RetryPolicy
from stages.registry import tags as registry_tags
from stages.registry.client import Registry
from stages.registry.register_run import register, score_champion
from stages.registry.tracking import use_store
from stages.serving.manifest import ManifestError
from tests.conftest import REPO
from tests.factories import new_store, register_candidate
from tests.registry_support import Workspace

NAME = "integrity"
TRUNC = {"max_length": 128, "truncation": "head", "head_fraction": 0.25}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One registered version (the constant model: no training) in a SQLite store of its own."""
    root = tmp_path_factory.mktemp("integrity")
    uri = new_store(root)
    report, cand = register_candidate(uri, Workspace(root / "ws"), NAME, TRUNC)
    assert report["action"] == "registered" and report["aliases"] == ["challenger", "champion"]
    (weights,) = (root / "mlartifacts").rglob("artifacts/model/model.safetensors")
    return {"uri": uri, "cand": cand, "model": weights.parents[2], "root": root}


@contextlib.contextmanager
def tampered(model: Path, how: str, marker: Path) -> Iterator[None]:
    """Change the registered model's files in the artifact store for the block, then put them back."""
    backup = model.parent / "backup"
    shutil.copytree(model, backup)
    evil = f"from pathlib import Path\nPath({str(marker)!r}).write_text('the artifact code ran')\n"
    folder = model / "artifacts" / "model"
    try:
        if how == "weights":
            data = bytearray((folder / "model.safetensors").read_bytes())
            data[-100] ^= 1
            (folder / "model.safetensors").write_bytes(bytes(data))
        elif how == "extra_py":
            (folder / "evil.py").write_text(evil)
        elif how == "auto_map":
            (folder / "evil.py").write_text(evil)
            config = json.loads((folder / "config.json").read_text())
            config["auto_map"]["AutoModelForSequenceClassification"] = (
                "evil.MeanPoolForSequenceClassification"
            )
            (folder / "config.json").write_text(json.dumps(config))
        elif how == "meanpool":
            (model / "code" / "meanpool.py").write_text((model / "code" / "meanpool.py").read_text() + evil)
        elif how == "pyfunc":
            (model / "textclf.py").write_text((model / "textclf.py").read_text() + evil)
        yield
    finally:
        shutil.rmtree(model)
        backup.rename(model)


CASES = [
    ("weights", "`artifacts/model/model.safetensors`: expected sha256"),
    ("extra_py", "`artifacts/model/evil.py`: not in the manifest (an added file)"),
    ("auto_map", "`artifacts/model/config.json`: expected sha256"),
    ("meanpool", "`code/meanpool.py`: expected sha256"),
    ("pyfunc", "`textclf.py`: expected sha256"),
]


def test_the_untouched_version_loads_and_predicts_everywhere(store: dict[str, Any]) -> None:
    use_store(store["uri"])
    texts = store["cand"].test["text"].head(3).tolist()
    reg = Registry.connect(store["uri"], NAME, RetryPolicy(retries=0))
    mv = reg.version("1")
    recorded = json.loads(mv.tags[registry_tags.MANIFEST])["files"]
    assert {"MLmodel", "textclf.py", "code/meanpool.py", "code/manifest.py"} <= recorded.keys()
    assert {"artifacts/model/model.safetensors", "artifacts/model/config.json"} <= recorded.keys()
    assert reg.predict("1", texts) == store["cand"].test["pred"].head(3).tolist()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", store["uri"])
        out = predict_load_model(f"models:/{NAME}@champion").predict(pd.DataFrame({"text": texts}))
    assert list(out.columns) == ["label", "score"] and len(out) == 3


@pytest.mark.parametrize(("how", "named"), CASES)
def test_a_changed_artifact_is_refused_before_any_of_it_runs(
    store: dict[str, Any], tmp_path: Path, how: str, named: str
) -> None:
    marker = tmp_path / "marker"
    reg = Registry.connect(store["uri"], NAME, RetryPolicy(retries=0))
    with tampered(store["model"], how, marker):
        with pytest.raises(ManifestError) as err:  # the register stage's load-back check, the gate
            reg.load("1")
        msg = str(err.value)
        assert named in msg and f"model `{NAME}` version 1" in msg and "move the aliases" in msg
        # the gate scores the champion: a champion that fails its check blocks promotion, with the reason
        record = reg.champion_record()
        assert record is not None and record.version == "1"
        score = score_champion(reg, record, store["cand"])
        assert score.preds is None and "ManifestError" in score.error and named in score.error
        with pytest.MonkeyPatch.context() as mp:  # ftpipe predict
            mp.setenv("MLFLOW_TRACKING_URI", store["uri"])
            with pytest.raises(PredictError, match=named.replace("(", r"\(").replace(")", r"\)")):
                predict_load_model(f"models:/{NAME}@champion")
    assert not marker.exists()


@pytest.mark.parametrize(("how", "named"), CASES[:4])
def test_the_served_model_checks_its_folder_and_code_at_load(
    store: dict[str, Any], tmp_path: Path, how: str, named: str
) -> None:
    """`mlflow models serve` runs the registered textclf.py, which checks the folder and its code against
    the manifest in its model_config before reading any of them; the folder's own code never runs."""
    import mlflow

    marker = tmp_path / "marker"
    copy = tmp_path / "served"
    with tampered(store["model"], how, marker):
        shutil.copytree(store["model"], copy)
    with pytest.raises(Exception, match="differ from the manifest") as err:
        mlflow.pyfunc.load_model(str(copy))
    assert named.split("`")[1].split("/")[-1] in str(err.value)
    assert not marker.exists()


def test_a_version_without_a_manifest_is_refused(store: dict[str, Any]) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(store["uri"], store["uri"])
    tag = client.get_model_version(NAME, "1").tags[registry_tags.MANIFEST]
    client.delete_model_version_tag(NAME, "1", registry_tags.MANIFEST)
    try:
        with pytest.raises(
            ManifestError, match="registered before ftpipe recorded a manifest.*ftpipe promote"
        ):
            Registry.connect(store["uri"], NAME, RetryPolicy(retries=0)).load("1")
    finally:
        client.set_model_version_tag(NAME, "1", registry_tags.MANIFEST, tag)


def test_only_registered_versions_are_loaded_by_predict(store: dict[str, Any]) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", store["uri"])
        with pytest.raises(PredictError, match="only registered versions"):
            predict_load_model(str(store["model"]))


def test_fetch_keeps_a_checked_copy_to_serve_or_nothing(
    store: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import mlflow

    from flows.commands.cli import build_parser

    def fetch(dest: Path) -> int:
        args = build_parser().parse_args(["fetch", "champion", str(dest), "--name", NAME, "--params", "none"])
        return args.func(args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", store["uri"])
        marker = tmp_path / "marker"
        with tampered(store["model"], "pyfunc", marker):
            assert fetch(tmp_path / "bad") == 2
        assert "`textclf.py`: expected sha256" in capsys.readouterr().err
        assert not (tmp_path / "bad").exists() and not marker.exists()
        assert [p.name for p in tmp_path.iterdir()] == []  # no temporary leftovers either

        assert fetch(tmp_path / "served") == 0
        assert "mlflow models serve -m" in capsys.readouterr().out
    model = mlflow.pyfunc.load_model(str(tmp_path / "served"))  # what `mlflow models serve -m` loads
    texts = store["cand"].test["text"].head(2).tolist()
    assert len(model.predict(pd.DataFrame({"text": texts}))) == 2


def test_a_version_from_before_manifests_is_registered_again(store: dict[str, Any]) -> None:
    """Runs last: it adds version 2. The same model, registered before manifests (no tag), is not
    "unchanged": it is registered again with its manifest, and the gate, unable to check the old
    champion, keeps the new version challenger with the reason (`ftpipe promote` decides)."""
    from mlflow import MlflowClient

    client = MlflowClient(store["uri"], store["uri"])
    client.delete_model_version_tag(NAME, "1", registry_tags.MANIFEST)
    p = RegisterParams(model_name=NAME, retries=0, verify_rows=8)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", store["uri"])
        report = register(p, store["cand"], store["uri"], params={}, truncation=TRUNC, repo=REPO)
    assert report["action"] == "registered" and report["version"] == "2" and not report["promoted"]
    assert registry_tags.MANIFEST in client.get_model_version(NAME, "2").tags
    margin = next(c for c in report["gate"]["checks"] if c["name"] == "margin")
    assert margin["outcome"] == "fail" and "registered before ftpipe recorded a manifest" in margin["reason"]
