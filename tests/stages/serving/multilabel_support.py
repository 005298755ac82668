"""A tiny multi-label model for the served side's tests: a mean-pool head on the tiny BERT whose config says
`problem_type` multi_label_classification and carries `ftpipe_thresholds`, as finetune saves one, and the
served class loaded from it the way MLflow lays a registered model out."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd

from stages.serving.textclf import MULTI_LABEL, TextClassifier

NAMES = ["billing", "bug", "feature"]
THRESHOLDS = {"billing": 0.4, "bug": 0.5, "feature": 0.6}
TEXTS = [
    "Story 1: market shares profit bank economy the of",
    "Story 2: match goal team player coach league",
    "Story 3: software computer phone internet chip data",
    "the a of and to in for on with by said year new",
    "Story 5: profit goal chip bank team phone",
    "prices investors growth trade season win cup score users network",
]


def build_multilabel_model(tiny_bert: Path, out: Path, thresholds: dict[str, float] | None = None) -> Path:
    """A saved 3-label mean-pool classifier (weights, config with id2label and thresholds, tokenizer).

    The head is scaled so that the labels' probabilities spread over (0, 1) from text to text (a random
    tiny head gives every label about 0.5), so some texts get one label, some several."""
    import torch
    from transformers import AutoTokenizer

    from stages.serving.meanpool import MeanPoolForSequenceClassification

    torch.manual_seed(3)
    model = MeanPoolForSequenceClassification.from_body(
        str(tiny_bert),
        num_labels=len(NAMES),
        id2label=dict(enumerate(NAMES)),
        label2id={n: i for i, n in enumerate(NAMES)},
        problem_type=MULTI_LABEL,
        ftpipe_thresholds=THRESHOLDS if thresholds is None else thresholds,
    )
    with torch.no_grad():
        model.classifier.weight.mul_(40.0)
        model.classifier.bias.copy_(torch.tensor([2.0, 1.6, 2.0]))
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(out)
    return out


def load_served(folder: Path, tmp_path: Path, **config: Any) -> TextClassifier:
    """The served class loaded from `folder` laid out as MLflow lays a registered model (artifacts/hf_model,
    code/ with ftpipe's registered modules, the manifest in model_config)."""
    from stages.registry import integrity

    model = tmp_path / "model"
    shutil.copytree(folder, model / "artifacts" / "hf_model")
    (model / "code").mkdir()
    for f in integrity.registered_code():
        shutil.copy(f, model / "code" / f.name)
    manifest = integrity.served_manifest(model / "artifacts" / "hf_model")
    clf = TextClassifier()
    cfg = {"max_length": 32, "windows": 2, "truncation": "head", "batch_size": 4, "manifest": manifest}
    clf.load_context(
        SimpleNamespace(
            artifacts={"hf_model": str(model / "artifacts" / "hf_model")}, model_config={**cfg, **config}
        )
    )
    return clf


class PyfuncLike:
    """The served class behind a loaded pyfunc's call (`model.predict(frame, params=...)`), as `ftpipe
    predict` and `ftpipe serve` call it."""

    def __init__(self, clf: TextClassifier) -> None:
        self.clf = clf

    def predict(self, frame: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.clf.predict(None, frame, params)  # type: ignore[arg-type]
