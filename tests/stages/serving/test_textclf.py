"""The served model's own code: windows identical to the tokenize stage's, bounded work, refused inputs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from stages.config.tokenize import TokenizeParams
from stages.serving.textclf import TextClassifier, encode
from stages.tokenize import encode_batch, load_tokenizer
from tests.encoding_reference import SpyTokenizer, around, old_encode_batch, varied_texts

POLICIES = ("head", "tail", "head+tail")


@pytest.fixture(scope="module")
def tok(tiny_bert: Path):
    return load_tokenizer(TokenizeParams(model=str(tiny_bert)))


def _texts(budget: int) -> list[str]:
    cut = 2 * 16 * budget
    long = varied_texts(5, [cut])[0]
    return [
        *varied_texts(4, [0, 1, budget - 1, budget, budget + 1, 4 * budget]),
        *around(long, [cut - 1, cut, cut + 1, cut + 9, 3 * cut]),
    ]


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize(("max_length", "windows"), [(8, 1), (8, 3), (16, 2)])
def test_served_windows_are_the_old_encoders_and_the_tokenize_stages(
    tok, policy: str, max_length: int, windows: int
) -> None:
    texts = _texts((max_length - 2) * windows)
    served = encode(tok, texts, max_length, policy, 0.25, windows)
    old = old_encode_batch(tok, texts, max_length, windows, policy, 0.25)
    assert [[w["input_ids"] for w in row] for row in served] == old["windows"]
    assert [[w["token_type_ids"] for w in row] for row in served] == old["window_type_ids"]
    assert all(w["attention_mask"] == [1] * len(w["input_ids"]) for row in served for w in row)
    p = TokenizeParams(max_length=max_length, windows=windows, truncation=policy)
    assert [[w["input_ids"] for w in row] for row in served] == encode_batch(tok, texts, p)["windows"]


@pytest.mark.parametrize("policy", POLICIES)
def test_a_huge_text_reaches_the_tokenizer_only_up_to_the_bound(tok, policy: str) -> None:
    """Before: the whole text was tokenized and, under head+tail, its ends merged (2 GB for 200 KB,
    22 GB for 10 MB). Now no more than 2 x 16 characters per token of the budget reach the tokenizer."""
    text = varied_texts(6, [60_000])[0]  # 360 KB
    budget = 3 * 6
    spy = SpyTokenizer(tok, limit=2 * 16 * budget)
    (row,) = encode(spy, [text], 8, policy, 0.25, 3)
    assert max(spy.lengths) <= 16 * budget
    whole = tok.backend_tokenizer.encode(text, add_special_tokens=False).ids
    kept = {"head": whole[:18], "tail": whole[-18:], "head+tail": whole[:4] + whole[-14:]}[policy]
    assert [i for w in row for i in w["input_ids"][1:-1]] == kept


@pytest.mark.parametrize(
    ("texts", "row", "why"),
    [
        (["fine text", ""], 1, "empty"),
        (["  \n\t "], 0, "blank"),
        (["fine", "fine", None], 2, "missing"),
        ([float("nan")], 0, "missing"),
        (["fine", 42], 1, "int"),
        (["fine", 1.5], 1, "float"),
    ],
)
def test_empty_blank_and_non_string_texts_are_refused_with_a_400(texts: list, row: int, why: str) -> None:
    """`""` used to be labelled ("sports", 0.38); under `mlflow models serve` the refusal answers 400."""
    with pytest.raises(MlflowException, match=rf"row {row}: .*{why}") as err:
        TextClassifier().predict(None, pd.DataFrame({"text": texts}))
    assert err.value.error_code == "INVALID_PARAMETER_VALUE" and err.value.get_http_status_code() == 400


# ------------------------------------------------------------------ the one window-inference routine


@pytest.fixture(scope="module")
def classifier(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny 3-class BERT classifier folder (weights, config with id2label, tokenizer)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = tmp_path_factory.mktemp("tiny-clf")
    torch.manual_seed(1)
    names = ["business", "sport", "tech"]
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert, num_labels=3, id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)}
    )
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(out)
    return out


def _old_loop(model, tok, windows, owner, n_rows, batch_size):
    """The per-batch loop evaluate and the served model ran before (fixed rows per batch)."""
    import numpy as np
    import torch

    order = sorted(range(len(windows)), key=lambda i: len(windows[i]["input_ids"]))
    probs = np.zeros((len(windows), model.config.num_labels))
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            batch = tok.pad([windows[i] for i in idx], return_tensors="pt")
            probs[idx] = torch.softmax(model(**batch).logits.float(), dim=-1).numpy()
    sums = np.zeros((n_rows, probs.shape[1]))
    np.add.at(sums, owner, probs)
    return sums / np.bincount(owner, minlength=n_rows)[:, None]


def _windows(tok, n_texts: int = 23):
    texts = varied_texts(7, [3 + 11 * (i % 7) for i in range(n_texts)])
    per_text = encode(tok, texts, 16, "head+tail", 0.25, 3)  # 1 to 3 windows of 3..16 tokens
    windows = [w for row in per_text for w in row]
    owner = [i for i, row in enumerate(per_text) for _ in row]
    return windows, owner


@pytest.mark.parametrize("batch_tokens", [1, 16, 40, 100, 10_000])
def test_window_probabilities_equal_the_old_loop_and_respect_the_token_budget(
    classifier: Path, batch_tokens: int
) -> None:
    import numpy as np
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from stages.serving.textclf import window_probabilities

    tok = AutoTokenizer.from_pretrained(classifier)
    model = AutoModelForSequenceClassification.from_pretrained(classifier).eval()
    windows, owner = _windows(tok)
    assert (
        len({len(w["input_ids"]) for w in windows}) > 3 and len(windows) > 23
    )  # mixed lengths, several windows
    batches: list[list[int]] = []

    def pad(ws):
        batches.append([len(w["input_ids"]) for w in ws])
        return tok.pad(ws, return_tensors="pt")

    got = window_probabilities(model, pad, windows, owner, 23, batch_tokens)
    want = _old_loop(model, tok, windows, np.array(owner), 23, 5)
    assert got.dtype == np.float64 and got.shape == (23, 3)
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    assert sum(len(b) for b in batches) == len(windows)
    for b in batches:  # padded size within the budget, unless a single window is already over it
        assert len(b) * max(b) <= batch_tokens or len(b) == 1
        assert b == sorted(b, reverse=True)
    flat = [n for b in batches for n in b]
    assert flat == sorted(flat, reverse=True)  # longest first across batches too


def test_a_row_without_windows_is_an_error(classifier: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from stages.serving.textclf import window_probabilities

    tok = AutoTokenizer.from_pretrained(classifier)
    model = AutoModelForSequenceClassification.from_pretrained(classifier).eval()
    windows, owner = _windows(tok, 3)
    with pytest.raises(ValueError, match="1 row"):
        window_probabilities(model, lambda ws: tok.pad(ws, return_tensors="pt"), windows, owner, 4, 64)


def _served(folder: Path, tmp_path: Path, **config) -> TextClassifier:
    """The served class loaded the way MLflow lays a registered model out (artifacts/hf_model, code/)."""
    from tests.stages.serving.multilabel_support import load_served

    return load_served(
        folder, tmp_path, **{"max_length": 16, "windows": 3, "truncation": "head+tail", **config}
    )


def test_served_int8_and_bf16_options_load_and_predict_valid_labels(classifier: Path, tmp_path: Path) -> None:
    import torch

    texts = pd.DataFrame({"text": varied_texts(3, [5 + 13 * i for i in range(12)])})
    fp32 = _served(classifier, tmp_path / "a").predict(None, texts)
    int8_model = _served(classifier, tmp_path / "b", quantize="int8")
    assert any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in int8_model.model.modules())
    int8 = int8_model.predict(None, texts)
    auto = _served(classifier, tmp_path / "c", precision="auto").predict(None, texts)
    for out in (fp32, int8, auto):
        assert list(out.columns) == ["label", "score"] and len(out) == 12
        assert set(out["label"]) <= {"business", "sport", "tech"} and out["score"].between(1 / 3, 1).all()
    # a random tiny model's classes are near ties, so agreement is measured on BBC (bench/inference.py);
    # here the scores stay close
    assert (int8["score"] - fp32["score"]).abs().max() < 0.05


def test_served_model_refuses_an_unknown_option(classifier: Path, tmp_path: Path) -> None:
    with pytest.raises(MlflowException, match=r"model_config\['quantize'\] is 'int4'; use one of none, int8"):
        _served(classifier, tmp_path, quantize="int4")
