"""`ftpipe predict` with a multi-label model: the set per text as `label` ("billing|bug"), its score, and a
`p_<label>` column per label with or without --probabilities (the served class itself, in process)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.commands.predict.command import predict_file
from tests.flows.commands.predict.test_predict import write_input
from tests.stages.serving.multilabel_support import (
    NAMES,
    TEXTS,
    PyfuncLike,
    build_multilabel_model,
    load_served,
)

PROBS = [f"p_{n}" for n in NAMES]


@pytest.fixture(scope="module")
def model(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> PyfuncLike:
    folder = build_multilabel_model(tiny_bert, tmp_path_factory.mktemp("ml-model"))
    return PyfuncLike(load_served(folder, tmp_path_factory.mktemp("ml-served")))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_the_output_holds_the_sets_and_every_label_probability(
    model: PyfuncLike, tmp_path: Path, suffix: str
) -> None:
    texts = TEXTS * 3
    inp = write_input(tmp_path / "in.jsonl", [{"id": i, "text": t} for i, t in enumerate(texts)])
    plain, asked = tmp_path / f"plain{suffix}", tmp_path / f"asked{suffix}"
    stats = predict_file(model, inp, plain, batch_size=4, progress=False)
    predict_file(model, inp, asked, batch_size=4, progress=False, probabilities=True)
    read = pd.read_csv if suffix == ".csv" else pd.read_parquet
    out = read(plain)
    assert list(out.columns) == ["id", "label", "score", *PROBS]
    pd.testing.assert_frame_equal(out, read(asked))
    want = model.predict(pd.DataFrame({"text": texts}))
    assert out["label"].tolist() == want["label"].tolist() and any("|" in s for s in out["label"])
    np.testing.assert_allclose(out[["score", *PROBS]], want[["score", *PROBS]], atol=1e-6)
    assert stats["labels"] == dict(sorted(want["label"].value_counts().items()))  # counted per set
