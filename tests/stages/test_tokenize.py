"""tokenize: truncation policies, special tokens, length report, and the stage on a tiny tokenizer."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from stages.config.tokenize import TokenizeParams
from stages.tokenize import encode_batch, load_tokenizer, tokenize_table


@pytest.fixture(scope="module")
def tok(tiny_bert: Path):
    return load_tokenizer(TokenizeParams(model=str(tiny_bert)))


def words(tok, ids: list[int]) -> list[str]:
    return tok.convert_ids_to_tokens(ids)


TEXT = "market bank team goal chip data phone coach profit score"


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("head", ["[CLS]", "market", "bank", "team", "goal", "chip", "data", "[SEP]"]),
        ("tail", ["[CLS]", "chip", "data", "phone", "coach", "profit", "score", "[SEP]"]),
        ("head+tail", ["[CLS]", "market", "data", "phone", "coach", "profit", "score", "[SEP]"]),
    ],
)
def test_truncation_policies(tok, policy: str, expected: list[str]) -> None:
    p = TokenizeParams(model="x", windows=1, max_length=8, truncation=policy, head_fraction=0.25)
    out = encode_batch(tok, [TEXT], p)
    assert words(tok, out["input_ids"][0]) == expected
    assert out["n_tokens"] == [12] and out["attention_mask"][0] == [1] * 8
    assert out["token_type_ids"][0] == [0] * 8


LONG = f"{TEXT} {TEXT}"  # 20 tokens
W = TEXT.split()


@pytest.mark.parametrize(
    ("policy", "windows", "expected"),
    [
        # 6 tokens per window: two windows hold 12 of the 20, the policy picks which
        ("head", 2, [W[:6], W[6:] + W[:2]]),
        ("tail", 2, [W[8:] + W[:4], W[4:]]),
        # four windows hold all 20, cut into near-equal windows: 5 + 5 + 5 + 5, not 6 + 6 + 6 + 2
        ("head", 4, [W[:5], W[5:], W[:5], W[5:]]),
    ],
)
def test_windows_cover_the_text_by_policy(tok, policy: str, windows: int, expected: list) -> None:
    p = TokenizeParams(model="x", max_length=8, windows=windows, truncation=policy)
    out = encode_batch(tok, [LONG], p)
    got = [words(tok, w) for w in out["windows"][0]]
    assert all(w[0] == "[CLS]" and w[-1] == "[SEP]" for w in got)
    assert [w[1:-1] for w in got] == expected
    assert out["n_windows"] == [len(expected)] and out["input_ids"][0] == out["windows"][0][0]
    assert out["window_type_ids"][0] == [[0] * len(w) for w in got]
    assert out["n_tokens"] == [22]


def test_windows_one_is_the_single_window_policy(tok) -> None:
    for policy in ("head", "tail", "head+tail"):
        one = encode_batch(tok, [TEXT], TokenizeParams(model="x", windows=1, max_length=8, truncation=policy))
        assert one["windows"][0] == [one["input_ids"][0]] and one["n_windows"] == [1]


def test_short_text_is_not_padded(tok) -> None:
    out = encode_batch(tok, ["market bank"], TokenizeParams(model="x", windows=1, max_length=32))
    assert words(tok, out["input_ids"][0]) == ["[CLS]", "market", "bank", "[SEP]"]


def test_tokenize_table_keeps_columns_and_reports_lengths(tok) -> None:
    df = pd.DataFrame(
        {"id": ["a", "b"], "text": [TEXT, "market bank"], "label": ["x", "y"], "group": ["g1", "g2"]}
    )
    ds, report = tokenize_table(df, TokenizeParams(model="x", windows=1, max_length=8), tok)
    assert {"id", "text", "label", "group", "input_ids", "attention_mask", "n_tokens"} <= set(ds.column_names)
    assert report["truncated_fraction"] == 0.5 and report["tokens"]["max"] == 12
    assert [len(x) for x in ds["input_ids"]] == [8, 4]
    _, windowed = tokenize_table(df, TokenizeParams(model="x", max_length=8, windows=2), tok)
    assert windowed["truncated_fraction"] == 0.0 and windowed["total_windows"] == 3


def test_the_stage_encodes_with_the_served_models_encoder(tok) -> None:
    """One encoder: the stage's windows are the served model's, and the encoder's refusal of a window
    with no room beside the special tokens comes back naming the stage's params key."""
    from stages.serving import textclf
    from stages.tokenize import TokenizeError

    p = TokenizeParams(model="x", max_length=8, windows=2, truncation="head+tail", head_fraction=0.3)
    served = textclf.encode(tok, [LONG, TEXT], 8, "head+tail", 0.3, 2)
    assert encode_batch(tok, [LONG, TEXT], p)["windows"] == [[w["input_ids"] for w in t] for t in served]
    tight = TokenizeParams.model_construct(**{**p.model_dump(), "max_length": 2})  # below the schema's floor
    with pytest.raises(TokenizeError, match=r"tokenize.model `x`: max_length = 2 leaves no room beside"):
        encode_batch(tok, [TEXT], tight)


def test_builtin_minilm_resolves_offline() -> None:
    tok = load_tokenizer(TokenizeParams())
    assert tok.is_fast and len(tok) == 30522


def test_unknown_builtin_is_a_clear_error() -> None:
    from stages.model.resolve import ModelRefError

    with pytest.raises(ModelRefError, match="unknown builtin model `builtin:nope`"):
        load_tokenizer(TokenizeParams(model="builtin:nope"))


def test_saved_dataset_is_byte_identical_on_a_rerun(tok, tmp_path) -> None:
    """DVC hashes the output folder: a rerun on the same input must not change it (datasets' own
    fingerprint of an in-memory table is random, so the stage derives it from the content)."""
    df = pd.DataFrame(
        {"id": ["a", "b"], "text": [TEXT, "market bank"], "label": ["x", "y"], "group": ["g1", "g2"]}
    )
    p = TokenizeParams(model="x", windows=1, max_length=8)
    for name in ("one", "two"):
        tokenize_table(df, p, tok)[0].save_to_disk(str(tmp_path / name))
    for f in ("state.json", "dataset_info.json", "data-00000-of-00001.arrow"):
        assert (tmp_path / "one" / f).read_bytes() == (tmp_path / "two" / f).read_bytes()


# --------------------------------------------------------------- bounded work per text (issue 13)

POLICIES = ("head", "tail", "head+tail")


def _texts_around_the_budget(budget: int) -> list[str]:
    """Short texts, texts a few tokens either side of the budget, and texts either side of the length
    (2 x 16 x budget characters) above which only their ends are tokenized, some cut inside a word."""
    from tests.encoding_reference import around, varied_texts

    cut = 2 * 16 * budget
    far = 3 * cut if budget < 100 else cut + 500  # the old encoder is slow on long texts
    long = varied_texts(7, [far // 4])[0]
    assert len(long) >= far
    return [
        *varied_texts(1, [0, 1, 2, 5, budget - 2, budget - 1, budget, budget + 1, budget + 3]),
        *varied_texts(2, [2 * budget, 3 * budget, 5 * budget]),
        *around(long, [cut - 1, cut, cut + 1, cut + 5, cut + 37, far]),
    ]


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize(("max_length", "windows"), [(8, 1), (8, 3), (12, 2)])
def test_bounded_encoding_is_identical_to_the_whole_text_encoding(
    tok, policy: str, max_length: int, windows: int
) -> None:
    """The committed outputs must not change: every column equals the old encoder's, texts of every
    length around the budget and around the character cut included."""
    from tests.encoding_reference import old_encode_batch

    budget = (max_length - 2) * windows
    texts = _texts_around_the_budget(budget)
    p = TokenizeParams(
        model="x", max_length=max_length, windows=windows, truncation=policy, head_fraction=0.3
    )
    assert encode_batch(tok, texts, p) == old_encode_batch(tok, texts, max_length, windows, policy, 0.3)


@pytest.mark.parametrize("policy", POLICIES)
def test_bounded_encoding_is_identical_with_the_packaged_minilm_and_a_byte_level_bpe(
    tiny_gpt2: Path, policy: str
) -> None:
    from transformers import AutoTokenizer

    from tests.encoding_reference import old_encode_batch

    for tokenizer, max_length, windows in (
        (load_tokenizer(TokenizeParams()), 16, 2),
        (load_tokenizer(TokenizeParams()), 128, 8),  # the shipped settings: texts up to 45,000 characters
        (AutoTokenizer.from_pretrained(tiny_gpt2), 10, 3),
    ):
        specials = tokenizer.num_special_tokens_to_add(pair=False)
        texts = _texts_around_the_budget((max_length - specials) * windows)
        p = TokenizeParams(model="x", max_length=max_length, windows=windows, truncation=policy)
        want = old_encode_batch(tokenizer, texts, max_length, windows, policy, 0.25)
        assert encode_batch(tokenizer, texts, p) == want


@pytest.mark.parametrize("policy", POLICIES)
def test_a_huge_text_reaches_the_tokenizer_only_in_pieces_within_the_bound(tok, policy: str) -> None:
    """A 360 KB text: counted in pieces of 16 characters per token of the budget, its windows read from
    a piece at each end, with the token counts of the whole text. Before, it was tokenized whole and,
    under head+tail, a second time, and the two Encodings merged: memory grew with the square of the
    text (200 KB took 2 GB; 10 MB, 22 GB)."""
    from tests.encoding_reference import SpyTokenizer, varied_texts

    text = varied_texts(3, [60_000])[0]
    p = TokenizeParams(model="x", max_length=8, windows=2, truncation=policy)
    spy = SpyTokenizer(tok, limit=16 * 12, whole_limit=2 * 16 * 12)
    out = encode_batch(spy, [text], p)
    assert sum(spy.lengths) < 1.1 * len(text)  # each piece re-reads one word of the one before
    whole = tok.backend_tokenizer.encode(text, add_special_tokens=False).ids
    kept = {"head": whole[:12], "tail": whole[-12:], "head+tail": whole[:3] + whole[-9:]}[policy]
    assert [i for w in out["windows"][0] for i in w[1:-1]] == kept
    assert out["n_tokens"] == [len(whole) + 2] and out["n_unk"] == [whole.count(tok.unk_token_id)]
    assert out["truncated"] == [True]
