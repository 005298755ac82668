"""The served model's own code: windows identical to the tokenize stage's, bounded work, refused inputs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from stages.common.textclf import TextClassifier, encode
from stages.tokenize import TokenizeParams, encode_batch, load_tokenizer
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
