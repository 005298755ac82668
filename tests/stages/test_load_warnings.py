"""Loading and logging a model prints no warning that says something is wrong when nothing is.

- finetune's mean-pool head on a BERT checkpoint: no LOAD REPORT of UNEXPECTED pooler weights;
- evaluate reading the saved mean-pool folder in a fresh process: no "model of type `ftpipe_mean_pool`"
  mismatch and no custom-code prompt;
- the gate scoring a registered version with `precision: fp32`: MLflow does not warn that `precision`
  was ignored, because the logged model_config carries every serving option (docs/serving.md).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from stages.config.register import RetryPolicy
from stages.registry.client import FP32_CONFIG, Registry
from stages.serving.textclf import DEFAULT_CONFIG
from tests.conftest import REPO, run_cmd
from tests.factories import new_store, register_candidate
from tests.registry_support import Workspace

NOISE = (
    "LOAD REPORT",
    "UNEXPECTED",
    "You are using a model of type",
    "contains custom code",
    "were ignored",
)
TRUNC = {"max_length": 64, "truncation": "head", "head_fraction": 0.25, "windows": 1}

BUILD = """
import sys
from transformers import AutoTokenizer
from stages.serving.meanpool import MeanPoolForSequenceClassification
body, out = sys.argv[1], sys.argv[2]
names = ["a", "b", "c"]
model = MeanPoolForSequenceClassification.from_body(
    body, num_labels=3, id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)}
)
assert "pooler" not in "".join(model.state_dict()), "the head never reads a pooler: none is saved"
model.save_pretrained(out)
AutoTokenizer.from_pretrained(body).save_pretrained(out)
"""

EVALUATE = """
import sys
from pathlib import Path
from datasets import Dataset
from stages.evaluate import predict_proba
ds = Dataset.from_dict({"input_ids": [[2, 10, 11, 12, 3], [2, 20, 21, 3], [2, 30, 3]]})
probs, _, _ = predict_proba(Path(sys.argv[1]), ds, batch_size=2)
assert probs.shape == (3, 3), probs.shape
"""


def _noise(text: str) -> list[str]:
    return [line for line in text.splitlines() if any(n in line for n in NOISE)]


def test_finetune_and_evaluate_load_the_mean_pool_model_quietly(tiny_bert: Path, tmp_path: Path) -> None:
    """Each in a fresh process, as dvc runs them: nothing registered beforehand by another test."""
    out = tmp_path / "model"
    built = run_cmd([sys.executable, "-c", BUILD, str(tiny_bert), str(out)], REPO)
    assert not _noise(built.stdout + built.stderr), built.stderr[-3000:]
    read = run_cmd([sys.executable, "-c", EVALUATE, str(out)], REPO, env={"HF_HUB_OFFLINE": "1"})
    assert not _noise(read.stdout + read.stderr), read.stderr[-3000:]


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny model registered to a SQLite store (the real register stage's function)."""
    root = tmp_path_factory.mktemp("load-warnings")
    uri = new_store(root)
    report, _ = register_candidate(uri, Workspace(root / "ws"), "quiet", TRUNC)
    return {"uri": uri, "policy": RetryPolicy(retries=0), "version": report["version"], "root": root}


def test_the_logged_model_config_has_every_serving_option(registered: dict[str, Any]) -> None:
    (mlmodel,) = (registered["root"] / "mlartifacts").rglob("artifacts/MLmodel")
    config = yaml.safe_load(mlmodel.read_text())["flavors"]["python_function"]["config"]
    assert set(DEFAULT_CONFIG) <= set(config), sorted(set(DEFAULT_CONFIG) - set(config))
    assert config["precision"] == "fp32" and config["max_length"] == TRUNC["max_length"]


def test_scoring_in_fp32_warns_of_no_ignored_option(registered: dict[str, Any]) -> None:
    """The gate loads the champion with {"quantize": "none", "precision": "fp32"}: both are honoured."""
    reg = Registry.connect(registered["uri"], "quiet", registered["policy"])
    records = Records()
    logger = logging.getLogger("mlflow")
    logger.addHandler(records)
    try:
        model = reg.load(registered["version"], FP32_CONFIG)
    finally:
        logger.removeHandler(records)
    assert not _noise("\n".join(records.lines)), records.lines
    assert model.model_config["precision"] == "fp32"
