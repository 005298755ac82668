"""clean's rules: strip markup and noise, normalise Unicode, fold whitespace, reject unusable rows, dedupe.

    out, quarantine, report = clean_table(raw_rows, clean_params, label_params)

Every rule is a param of the `clean` section. A rejected row goes to the quarantine with its reason; an
exact copy of a kept row is dropped and quarantined as `duplicate`; two copies of a text conflict only
when their labels differ after the label stage's fold (`stages.data.labels.canonical`); under
`label.task: multi_label` a row's label is a set, folded label by label, and two copies conflict when
their folded sets differ. Each kept row gets a near-duplicate `group` key, which the label split keeps on
one side.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict

import pandas as pd

from stages.config.clean import CleanParams
from stages.config.label import LabelParams
from stages.data.labels import canonical
from stages.data.words import count_words


class CleanError(ValueError):
    """Too much of the input was rejected; the message names the top reasons."""


class Quarantined(TypedDict):
    """One line of clean's rejects.jsonl: a rejected row or a dropped duplicate, and why."""

    id: str
    label: str | list[str]  # label.task multi_label: the row's label set
    reason: str  # empty | too_short | too_long | conflicting_labels | duplicate
    detail: str
    text: str  # its first 200 characters


class LengthWarning(TypedDict):
    """A length limit that removed more than `clean.warn_class_fraction` of a class."""

    label: str
    reason: str  # too_short | too_long
    rejected: int
    rows: int
    fraction: float
    message: str


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

    def apply(name: str, fn: Callable[[str], str]) -> None:
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
        form = p.unicode_form  # NFC | NFD | NFKC | NFKD here
        apply("unicode", lambda t: unicodedata.normalize(form, t))
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


LENGTH_LIMITS = {"too_short": "clean.min_words", "too_long": "clean.max_chars"}


def length_warnings(rows: Counter[str], cut: Counter[tuple[str, str]], p: CleanParams) -> list[LengthWarning]:
    """Each (class, length limit) whose rejects exceed `warn_class_fraction` of the class's rows.

    `rows`: rows per class; `cut`: rows rejected per (class, reason), both by the folded label."""
    out: list[LengthWarning] = []
    for (label, reason), n in sorted(cut.items()):
        fraction = n / rows[label]
        if fraction > p.warn_class_fraction:
            out.append(
                {
                    "label": label,
                    "reason": reason,
                    "rejected": n,
                    "rows": rows[label],
                    "fraction": round(fraction, 6),
                    "message": f"{LENGTH_LIMITS[reason]} removed {n} of {rows[label]} `{label}` rows "
                    f"({fraction:.1%} > clean.warn_class_fraction {p.warn_class_fraction}); see clean's "
                    "rejects.jsonl",
                }
            )
    return out


@dataclass
class Screened:
    """Rows after cleaning and the length rules: kept, rejected, and the counts the report needs."""

    kept: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[Quarantined] = field(default_factory=list)
    class_rows: Counter[str] = field(default_factory=Counter)  # rows per folded class, before any rule
    length_cut: Counter[tuple[str, str]] = field(default_factory=Counter)  # (class, reason) -> rows cut
    rule_counts: Counter[str] = field(default_factory=Counter)  # rows each cleaning rule changed


def rejected(row: dict[str, Any], reason: str, detail: str) -> Quarantined:
    """One line of rejects.jsonl: the row's id and label, why, and the start of its text."""
    return {
        "id": row["id"],
        "label": row["label"],
        "reason": reason,
        "detail": detail,
        "text": row["text"][:200],
    }


def folded_class(label: str | list[str], labels: LabelParams) -> str | tuple[str, ...]:
    """The label folded as the label stage folds it; multi_label: the sorted set of folded labels."""
    if isinstance(label, list):  # screen_rows makes every multi_label cell a list
        return tuple(sorted({canonical(x, labels) for x in label}))
    return canonical(label, labels)


def screen_rows(df: pd.DataFrame, p: CleanParams, labels: LabelParams) -> Screened:
    """Clean each row's text and reject the empty, too short and too long ones; rows keep a `_class`
    (the label folded as the label stage will fold it; multi_label: the folded set, and the length
    counts are per label of the set)."""
    s = Screened()
    multi = labels.task == "multi_label"
    for row in df.to_dict(orient="records"):
        text, changed = clean_text(row["text"], p)
        s.rule_counts.update(changed)
        if multi:  # Parquet gives a list cell back as an array; JSON and the next Parquet want a list
            row["label"] = [str(x) for x in row["label"]]
        row = {**row, "text": text, "_class": folded_class(row["label"], labels)}
        classes = list(row["_class"]) if multi else [row["_class"]]
        s.class_rows.update(classes)
        if not text:
            s.rejects.append(rejected(row, "empty", "no text left after cleaning"))
        elif (words := count_words(text)) < p.min_words:
            s.rejects.append(rejected(row, "too_short", f"{words} words < min_words {p.min_words}"))
            s.length_cut.update((c, "too_short") for c in classes)
        elif len(text) > p.max_chars:
            s.rejects.append(rejected(row, "too_long", f"{len(text)} chars > max_chars {p.max_chars}"))
            s.length_cut.update((c, "too_long") for c in classes)
        else:
            s.kept.append(row)
    return s


def dedupe(
    rows: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[Quarantined], list[Quarantined], int, int]:
    """Keep the first of each exact text; drop every copy of a text whose copies disagree on the folded
    label. Returns (kept, rejects: the conflicting copies, duplicates: the dropped copies of a kept row,
    duplicate groups, conflicting groups)."""
    by_text: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_text.setdefault(row["text"], []).append(row)
    kept: list[dict[str, Any]] = []
    rejects: list[Quarantined] = []
    duplicates: list[Quarantined] = []
    duplicate_groups = conflicts = 0
    for copies in by_text.values():
        folded = sorted({r["_class"] for r in copies})  # multi_label: sets (tuples); different sets conflict
        if len(folded) > 1:
            conflicts += 1
            ids = ", ".join(r["id"] for r in copies)
            folded = [list(f) if isinstance(f, tuple) else f for f in folded]
            rejects += [
                rejected(r, "conflicting_labels", f"same text with labels {folded} in rows {ids}")
                for r in copies
            ]
            continue
        if len(copies) > 1:
            duplicate_groups += 1
        kept.append(copies[0])
        duplicates += [rejected(r, "duplicate", f"exact duplicate of {copies[0]['id']}") for r in copies[1:]]
    return kept, rejects, duplicates, duplicate_groups, conflicts


def _each_label(column: pd.Series, labels: LabelParams | None) -> list[str]:
    """Every label of the column (multi_label: each label of each set) for the report's counts."""
    if labels is not None and labels.task == "multi_label":
        return [x for s in column for x in s]
    return list(column)


def clean_table(
    df: pd.DataFrame, p: CleanParams, labels: LabelParams | None = None
) -> tuple[pd.DataFrame, list[Quarantined], dict[str, Any]]:
    """Clean every row; return (kept rows, quarantine: rejects and dropped duplicates with reasons, report).

    Only rejects (unusable rows, copies with conflicting labels) count against `max_reject_fraction`;
    an exact copy of a kept row is nothing bad: it is dropped, counted as `duplicates`, and still
    quarantined (reason `duplicate`), so rows_in = rows_out + rejected + duplicates.
    `labels` (the label section; its defaults when None) folds labels as the label stage will, so two
    copies of a text conflict only when their labels differ after that fold.
    """
    s = screen_rows(df, p, LabelParams() if labels is None else labels)
    duplicates: list[Quarantined] = []
    kept, rejects, duplicate_groups, conflicts = s.kept, s.rejects, 0, 0
    if p.dedupe and kept:
        kept, more, duplicates, duplicate_groups, conflicts = dedupe(kept)
        rejects = rejects + more
    out = pd.DataFrame(kept, columns=[*df.columns]) if kept else df.iloc[0:0].copy()
    out["group"] = [group_key(t) for t in out["text"]]
    reasons = Counter(r["reason"] for r in rejects)
    report: dict[str, Any] = {
        "rows_in": len(df),
        "rows_out": len(out),
        "rejected": len(rejects),
        "reject_fraction": round(len(rejects) / max(len(df), 1), 6),
        "reject_reasons": dict(reasons.most_common()),
        "duplicates": len(duplicates),
        "quarantined": len(rejects) + len(duplicates),
        "duplicate_groups": duplicate_groups,
        "conflicting_duplicate_groups": conflicts,
        "near_duplicate_groups": sum(1 for n in Counter(out["group"]).values() if n > 1),
        "rows_changed_by_rule": dict(sorted(s.rule_counts.items())),
        "labels": dict(Counter(_each_label(out["label"], labels)).most_common()),
        "length_warnings": length_warnings(s.class_rows, s.length_cut, p),
    }
    if report["reject_fraction"] > p.max_reject_fraction:
        top = ", ".join(f"{k} ({n})" for k, n in reasons.most_common(3))
        raise CleanError(
            f"clean rejected {len(rejects)} of {len(df)} rows ({report['reject_fraction']:.1%}), above "
            f"clean.max_reject_fraction = {p.max_reject_fraction}; top reasons: {top} (exact duplicates "
            f"are not counted: {len(duplicates)} dropped). Inspect the rejects, fix the source or loosen "
            "the rule in params.yaml."
        )
    return out.reset_index(drop=True), rejects + duplicates, report
