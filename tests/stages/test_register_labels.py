"""Your own data under the shipped model name: register refuses it, naming both label sets and the fix.

The defect: a user put their own CSV through the pipeline with the default params, so it was registered
under `ftpipe-bbc-news`, judged against the BBC News champion, and ended as a rejected challenger with a
failed `labels` check. Now register stops before registering anything, in one paragraph.
Real MLflow on a SQLite file; tiny classifiers (tests/registry_support.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stages.config.register import GateParams, RegisterParams
from stages.gate.checks import Candidate, LabelSetChanged
from stages.registry.inputs import load_candidate, trained_on_from_splits
from stages.registry.register_run import register
from tests.conftest import REPO, build_splits, build_tokenizer, make_corpus
from tests.factories import OPEN_GATE
from tests.registry_support import Workspace

TRUNC = {"max_length": 128, "truncation": "head", "head_fraction": 0.25}
OWN_LABELS = {"business": "billing", "sport": "delivery", "tech": "product"}


class OwnData(Workspace):
    """The fixture corpus under the labels of another task: what a user's own CSV is to the registry."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.rows = [{**r, "label": OWN_LABELS[r["label"]]} for r in make_corpus(n_per_class=60, seed=2)]
        self.texts = [r["text"] for r in self.rows]
        self.labels = sorted({r["label"] for r in self.rows})
        self.splits, self.labels_json = build_splits(
            build_tokenizer(self.texts, root / "tok"), self.rows, root / "data"
        )
        self.train = []  # the constant model trains on nothing


def _candidate(ws: Workspace) -> Candidate:
    p = ws.candidate("constant", "constant")
    return load_candidate(p["model"], p["metrics"], p["predictions"], p["splits"], p["labels"])


def _register(uri: str, ws: Workspace, gate: GateParams) -> dict[str, Any]:
    p = RegisterParams(gate=gate, retries=1, backoff_s=0.2, verify_rows=16)  # the default model name
    return register(
        p,
        _candidate(ws),
        uri,
        params={"register": p.model_dump(), "tokenize": TRUNC},
        truncation=TRUNC,
        trained_on=trained_on_from_splits(ws.splits),
        repo=REPO,
    )


def test_own_data_under_the_default_name_is_refused_not_registered(sqlite_store: str, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    uri = sqlite_store
    name = RegisterParams().model_name
    gate = OPEN_GATE  # the constant models clear the floor
    first = _register(uri, Workspace(tmp_path / "bbc"), gate)
    assert first["name"] == name and first["champion"] == "1"

    with pytest.raises(LabelSetChanged) as refused:
        _register(uri, OwnData(tmp_path / "own"), gate)
    msg = str(refused.value)
    assert "\n" not in msg  # one paragraph: the runner shows the exception's line as the stage's error
    assert f"registered model `{name}` (register.model_name in params.yaml)" in msg
    assert "champion v1 predicts [business, sport, tech]" in msg
    assert "this model predicts [billing, delivery, product]" in msg
    assert "`ftpipe init NAME --csv YOUR.csv`" in msg and "register.gate.allow_label_change" in msg
    client = MlflowClient(uri)
    assert [str(v.version) for v in client.search_model_versions(f"name = '{name}'")] == ["1"]
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"

    # a label change the user means: the gate judges it, as before
    allowed = _register(uri, OwnData(tmp_path / "own"), gate.model_copy(update={"allow_label_change": True}))
    by = {c["name"]: c for c in allowed["gate"]["checks"]}
    assert allowed["version"] == "2" and by["labels"]["outcome"] == "pass"
