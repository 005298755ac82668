"""`ftpipe predict --probabilities`: a `p_<label>` column per class, from the served model itself.

A tiny classifier is registered by the register stage's own code (the served pyfunc textclf.py, its
signature declaring the `probabilities` param) into a SQLite store under tmp. A version logged without
that param (as every version registered before it was) still serves label and score, and asking it for
probabilities is refused in one line (tests/flows/commands/predict/test_predict_edges.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flows.commands.cli import build_parser
from tests.conftest import TOPICS
from tests.factories import new_store, register_candidate
from tests.flows.commands.predict.test_predict import write_input
from tests.registry_support import Workspace

NAME = "probs"
TRUNC = {"max_length": 128, "truncation": "head", "head_fraction": 0.25}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One version of a tiny classifier registered as `probs` (champion); the store's URI."""
    root = tmp_path_factory.mktemp("probs")
    uri = new_store(root)
    report, _ = register_candidate(uri, Workspace(root / "ws"), NAME, TRUNC)
    assert report["action"] == "registered"
    return uri


def run(*argv: str) -> int:
    args = build_parser().parse_args(
        ["predict", *argv, "--no-progress", "--model-uri", f"models:/{NAME}@champion"]
    )
    return args.func(args)


def test_probabilities_add_one_column_per_class(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    texts = [f"story {i}: {words}" for i, words in enumerate(TOPICS.values())] * 3
    inp = write_input(tmp_path / "in.jsonl", [{"id": i, "text": t} for i, t in enumerate(texts)])
    assert run(str(inp), str(tmp_path / "plain.parquet")) == 0
    assert run(str(inp), str(tmp_path / "probs.parquet"), "--probabilities") == 0
    plain, probs = pd.read_parquet(tmp_path / "plain.parquet"), pd.read_parquet(tmp_path / "probs.parquet")

    classes = [f"p_{label}" for label in sorted(TOPICS)]
    assert list(plain.columns) == ["id", "label", "score"]
    assert list(probs.columns) == ["id", "label", "score", *sorted(classes)]
    p = probs[sorted(classes)].to_numpy()
    assert np.allclose(p.sum(axis=1), 1.0) and np.allclose(p.max(axis=1), probs["score"])
    assert [c.removeprefix("p_") for c in np.array(sorted(classes))[p.argmax(axis=1)]] == probs[
        "label"
    ].tolist()
    pd.testing.assert_frame_equal(plain, probs[["id", "label", "score"]])  # the same labels and scores


def test_the_served_model_gives_probabilities_only_when_asked(store: str) -> None:
    import mlflow

    from stages.registry.tracking import use_store

    use_store(store)
    model: Any = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    frame = pd.DataFrame({"text": ["shares and profit", "the coach and the cup"]})
    assert list(model.predict(frame).columns) == ["label", "score"]
    out = model.predict(frame, params={"probabilities": True})
    assert [c for c in out.columns if c.startswith("p_")] == [f"p_{label}" for label in sorted(TOPICS)]
