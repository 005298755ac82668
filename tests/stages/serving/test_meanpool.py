"""The mean-pooling head on a tiny BERT: the pooled mean ignores padding, the body keeps its pre-trained
weights, and a saved folder loads by itself (its own code) in a process without the ftpipe repository."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stages.serving.meanpool import MeanPoolForSequenceClassification, register_auto_classes

LABELS = {
    "id2label": {0: "business", 1: "sport", 2: "tech"},
    "label2id": {"business": 0, "sport": 1, "tech": 2},
}
TEXTS = ["market shares", "the striker scored twice in the second half of the match"]


@pytest.fixture(scope="module")
def saved(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    model = MeanPoolForSequenceClassification.from_body(str(tiny_bert), num_labels=3, **LABELS)
    out = tmp_path_factory.mktemp("meanpool") / "model"
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(out)
    return out


def logits(model, tok, texts: list[str]):  # noqa: ANN001, ANN201
    import torch

    with torch.inference_mode():
        return model(**tok(texts, padding=True, return_tensors="pt")).logits


def test_padding_does_not_change_the_mean(saved: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    register_auto_classes()
    model = AutoModelForSequenceClassification.from_pretrained(saved).eval()
    tok = AutoTokenizer.from_pretrained(saved)
    alone = logits(model, tok, TEXTS[:1])[0]
    padded = logits(model, tok, TEXTS)[0]  # the short text padded to the long one's length
    assert torch.allclose(alone, padded, atol=1e-5)
    assert not torch.allclose(alone, logits(model, tok, TEXTS[1:])[0], atol=1e-3)


def test_body_keeps_its_pretrained_weights(tiny_bert: Path) -> None:
    from transformers import AutoModel

    base = AutoModel.from_pretrained(tiny_bert).state_dict()
    model = MeanPoolForSequenceClassification.from_body(str(tiny_bert), num_labels=3, **LABELS)
    body = model.base_model.state_dict()
    assert model.base_model is model.encoder
    assert set(base) - set(body) == {"pooler.dense.weight", "pooler.dense.bias"}  # unused by a mean head
    assert all(v.equal(base[k]) for k, v in body.items())
    assert model.config.id2label == LABELS["id2label"] and model.config.num_labels == 3


def test_saved_folder_loads_without_ftpipe(saved: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    register_auto_classes()
    here = logits(
        AutoModelForSequenceClassification.from_pretrained(saved).eval(),
        AutoTokenizer.from_pretrained(saved),
        TEXTS,
    )
    config = json.loads((saved / "config.json").read_text())
    assert config["model_type"] == "ftpipe_mean_pool"
    assert (
        config["auto_map"]["AutoModelForSequenceClassification"]
        == "meanpool.MeanPoolForSequenceClassification"
    )
    script = f"""
import json, sys, torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
assert not any(m == "stages" or m.startswith("stages.") for m in sys.modules)
tok = AutoTokenizer.from_pretrained({str(saved)!r}, trust_remote_code=True)
model = AutoModelForSequenceClassification.from_pretrained({str(saved)!r}, trust_remote_code=True).eval()
with torch.inference_mode():
    out = model(**tok({TEXTS!r}, padding=True, return_tensors="pt")).logits
print(json.dumps(out.tolist()))
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    import torch

    assert torch.allclose(torch.tensor(json.loads(proc.stdout.strip().splitlines()[-1])), here, atol=1e-5)
