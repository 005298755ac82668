"""clean: strip markup and noise, normalise Unicode, fold whitespace, reject unusable rows, collapse duplicates.

    python -m stages.clean --raw data/raw --out data/interim --report reports/clean.json

Every rule is a param of the `clean` section. Rejected rows go to `rejects.jsonl` with their reason;
the stage fails (naming the top reasons) when more than `clean.max_reject_fraction` of rows are rejected.
Each kept row gets a `group` key (case, punctuation and spacing removed) that the label stage uses to
keep near-duplicates on one side of the split.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import re
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import Field, model_validator

from stages.common.io import atomic_dir, read_table, write_json, write_jsonl, write_table
from stages.common.logs import setup_logging
from stages.common.params import StageParams, load_section
from stages.common.paths import add_path_args


class CleanParams(StageParams):
    """The `clean` section of params.yaml."""

    strip_html: bool = True
    strip_ansi: bool = True
    strip_control: bool = True
    unicode_form: Literal["NFKC", "NFC", "NFKD", "NFD", "none"] = "NFKC"
    fold_whitespace: bool = True
    lowercase: bool = False
    min_chars: int = Field(20, ge=0)
    max_chars: int = Field(100_000, ge=1)
    dedupe: bool = True
    max_reject_fraction: float = Field(0.2, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _range(self) -> CleanParams:
        if self.min_chars > self.max_chars:
            raise ValueError(f"min_chars ({self.min_chars}) must not exceed max_chars ({self.max_chars})")
        return self


class CleanError(ValueError):
    """Too much of the input was rejected; the message names the top reasons."""


_BLOCK_TAGS = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.I | re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>")
_BREAK_TAG = re.compile(r"<(?:br|/p|/div|/li|/h[1-6])\b[^>]*>", re.I)
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_INVISIBLE = {"\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\ufeff", "\u00ad"}
_WS = re.compile(r"\s+")
_NON_WORD = re.compile(r"[\W_]+")


def strip_markup(text: str) -> str:
    """Remove HTML comments, script/style blocks and tags, then unescape entities."""
    text = _COMMENT.sub(" ", text)
    text = _BLOCK_TAGS.sub(" ", text)
    text = _BREAK_TAG.sub("\n", text)
    text = _TAG.sub(" ", text)
    return html.unescape(text)


def strip_controls(text: str) -> str:
    """Drop control characters (NUL included) and invisible format characters; keep tab/newline."""
    return "".join(
        ch
        for ch in text
        if ch in "\t\n\r" or (unicodedata.category(ch) not in ("Cc", "Cs") and ch not in _INVISIBLE)
    )


def clean_text(text: str, p: CleanParams) -> tuple[str, list[str]]:
    """Apply the enabled rules in order; return the clean text and the names of rules that changed it."""
    changed: list[str] = []

    def apply(name: str, fn: Any) -> None:
        nonlocal text
        new = fn(text)
        if new != text:
            changed.append(name)
            text = new

    if p.strip_ansi:
        apply("ansi", lambda t: _ANSI.sub("", t))
    if p.strip_html:
        apply("html", strip_markup)
    if p.unicode_form != "none":
        apply("unicode", lambda t: unicodedata.normalize(p.unicode_form, t))
    if p.strip_control:
        apply("control", strip_controls)
    if p.fold_whitespace:
        apply("whitespace", lambda t: _WS.sub(" ", t).strip())
    if p.lowercase:
        apply("lowercase", str.lower)
    return text, changed


def group_key(text: str) -> str:
    """A near-duplicate key: case-folded words only, so copies differing in punctuation/spacing match."""
    return hashlib.sha1(_NON_WORD.sub(" ", text.casefold()).strip().encode()).hexdigest()[:16]


def clean_table(
    df: pd.DataFrame, p: CleanParams
) -> tuple[pd.DataFrame, list[dict[str, Any]], dict[str, Any]]:
    """Clean every row; return (kept rows, rejects with reasons, report)."""
    rejects: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    rule_counts: Counter[str] = Counter()

    def reject(row: dict[str, Any], reason: str, detail: str) -> None:
        rejects.append(
            {
                "id": row["id"],
                "label": row["label"],
                "reason": reason,
                "detail": detail,
                "text": row["text"][:200],
            }
        )

    for row in df.to_dict(orient="records"):
        text, changed = clean_text(row["text"], p)
        rule_counts.update(changed)
        row = {**row, "text": text}
        if not text:
            reject(row, "empty", "no text left after cleaning")
        elif len(text) < p.min_chars:
            reject(row, "too_short", f"{len(text)} chars < min_chars {p.min_chars}")
        elif len(text) > p.max_chars:
            reject(row, "too_long", f"{len(text)} chars > max_chars {p.max_chars}")
        else:
            kept.append(row)

    duplicate_groups = conflicts = 0
    if p.dedupe and kept:
        by_text: dict[str, list[dict[str, Any]]] = {}
        for row in kept:
            by_text.setdefault(row["text"], []).append(row)
        kept = []
        for rows in by_text.values():
            labels = sorted({r["label"] for r in rows})
            if len(labels) > 1:
                conflicts += 1
                ids = ", ".join(r["id"] for r in rows)
                for r in rows:
                    reject(r, "conflicting_labels", f"same text with labels {labels} in rows {ids}")
                continue
            if len(rows) > 1:
                duplicate_groups += 1
            kept.append(rows[0])
            for r in rows[1:]:
                reject(r, "duplicate", f"exact duplicate of {rows[0]['id']}")

    out = pd.DataFrame(kept, columns=[*df.columns]) if kept else df.iloc[0:0].copy()
    out["group"] = [group_key(t) for t in out["text"]]
    reasons = Counter(r["reason"] for r in rejects)
    near = Counter(out["group"])
    report = {
        "rows_in": len(df),
        "rows_out": len(out),
        "rejected": len(rejects),
        "reject_fraction": round(len(rejects) / max(len(df), 1), 6),
        "reject_reasons": dict(reasons.most_common()),
        "duplicate_groups": duplicate_groups,
        "conflicting_duplicate_groups": conflicts,
        "near_duplicate_groups": sum(1 for n in near.values() if n > 1),
        "rows_changed_by_rule": dict(sorted(rule_counts.items())),
        "labels": dict(Counter(out["label"]).most_common()),
    }
    if report["reject_fraction"] > p.max_reject_fraction:
        top = ", ".join(f"{k} ({n})" for k, n in reasons.most_common(3))
        raise CleanError(
            f"clean rejected {len(rejects)} of {len(df)} rows ({report['reject_fraction']:.1%}), above "
            f"clean.max_reject_fraction = {p.max_reject_fraction}; top reasons: {top}. Inspect the "
            "rejects, fix the source or loosen the rule in params.yaml."
        )
    return out.reset_index(drop=True), rejects, report


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    add_path_args(ap, "clean")
    args = ap.parse_args(argv)
    log = setup_logging("clean")
    p = load_section("clean", CleanParams, args.params)
    df = read_table(Path(args.raw) / "rows.parquet")
    out, rejects, report = clean_table(df, p)
    with atomic_dir(args.out) as tmp:
        write_table(tmp / "clean.parquet", out)
        write_jsonl(tmp / "rejects.jsonl", rejects)
    write_json(args.report, report)
    log.info("%d -> %d rows; rejected %s", report["rows_in"], report["rows_out"], report["reject_reasons"])


if __name__ == "__main__":
    main()
