"""`ftpipe serve` for a multi-label version: each answer row gives the set as `label` ("billing|bug") and
as `labels` (a JSON list), its score and every label's probability; the request log keeps the set string.

The app runs under uvicorn in a thread (real HTTP on 127.0.0.1) with a stand-in source serving the tiny
multi-label model through the served class itself (tests/stages/serving/multilabel_support.py).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from flows.commands.serve.app import build_app
from flows.commands.serve.follower import Follower, Served, answers_label_sets
from flows.commands.serve.reqlog import RequestLog
from stages.config.serve import ServeParams
from tests.flows.commands.serve.support import app_running, request
from tests.stages.serving.multilabel_support import (
    NAMES,
    TEXTS,
    PyfuncLike,
    build_multilabel_model,
    load_served,
)


class StandIn:
    name, alias, version = "tickets", "champion", "3"

    def __init__(self, model: PyfuncLike) -> None:
        self.model = model

    def target(self) -> str | None:
        return self.version

    def candidate(self, version: str) -> Served:
        multi = answers_label_sets(SimpleNamespace(unwrap_python_model=lambda: self.model.clf))
        return Served(self.name, version, "run", "hash", "files", self.model, True, multi_label=multi)


@pytest.fixture(scope="module")
def model(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> PyfuncLike:
    folder = build_multilabel_model(tiny_bert, tmp_path_factory.mktemp("ml-model"))
    return PyfuncLike(load_served(folder, tmp_path_factory.mktemp("ml-served")))


def test_a_multi_label_version_answers_sets_and_probabilities(model: PyfuncLike, tmp_path: Path) -> None:
    params = ServeParams(poll_seconds=0.1, log_flush_seconds=0.1)
    log = RequestLog(tmp_path / "log", params)
    with app_running(build_app(Follower(StandIn(model), 0.1), params, log)) as (url, _):
        status, headers, body = request(f"{url}/invocations", {"instances": TEXTS})
    assert status == 200 and headers["x-model-version"] == "3" and body["version"] == "3", body
    want = model.predict(pd.DataFrame({"text": TEXTS}))
    rows = body["predictions"]
    assert [list(r) for r in rows] == [["label", "labels", "score", *(f"p_{n}" for n in NAMES)]] * len(TEXTS)
    assert [r["label"] for r in rows] == want["label"].tolist()
    assert [r["labels"] for r in rows] == [s.split("|") for s in want["label"]]
    assert any(len(r["labels"]) > 1 for r in rows)
    np.testing.assert_allclose([[r[f"p_{n}"] for n in NAMES] for r in rows], want[[f"p_{n}" for n in NAMES]])
    logged = pq.read_table(log.folder).to_pandas()  # the log was closed with the app's lifespan
    assert logged["label"].tolist() == want["label"].tolist()
    assert [dict(p) for p in logged["probabilities"]][0] == pytest.approx(
        {n: want[f"p_{n}"][0] for n in NAMES}
    )


def test_only_a_multi_label_classifier_answers_sets(model: PyfuncLike) -> None:
    assert answers_label_sets(SimpleNamespace(unwrap_python_model=lambda: model.clf))
    single = SimpleNamespace(model=SimpleNamespace(config=SimpleNamespace(problem_type=None)))
    assert not answers_label_sets(SimpleNamespace(unwrap_python_model=lambda: single))
    assert not answers_label_sets(object())  # another flavour
