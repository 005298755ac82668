"""The monitor's pure core: served rows of a window against the champion's stored profile and test predictions.

    rows = read_log(Path("serve-logs"), start)                     # the request log's rows since `start`
    report = compare(rows, Reference(version, profile, test_predictions), MonitorParams(), start, end)
    report.outcome                                                 # pass | warn | fail | insufficient

Six figures, each judged by its two thresholds in the `monitor` section (docs/params.md):

- `label_js`: Jensen-Shannon distance (base 2) between the labels the champion gave served rows and the
  labels it gave its own test split (reports/predictions.csv logged with the version). For a multi-label
  champion (its profile has `label_sets`) each answer is a "|"-joined set, and the label mix counts each
  label of a set once (per-label shares, so a new combination of known labels moves nothing by itself).
- `confidence_drop`: the champion's mean top probability on its test split minus the served rows' mean.
- `length_js`: JS distance between the served texts' character lengths and the test split's, in the stored
  profile's bins (needs texts in the log: `serve.log_texts`).
- `domain_auc`: `stages.data.drift.domain_auc` between the profile's sample texts and served texts, both cut
  to the sample's length (needs texts in the log).
- `windows_js`: JS distance between the shares of served texts read as 1, 2, ... windows or `cut` (the
  counts `ftpipe serve` logs per row, with the champion's own tokenizer) and the train split's
  (the profile's `windows_hist`). No texts needed.
- `unk_rate_increase`: the share of served tokens that are the tokenizer's unknown token, minus the train
  split's (the profile's `unk_share`): a language or script the model never read. No texts needed.

A champion whose profile predates `windows_hist`/`unk_share`, or a log without the counts (a server older
than them), skips those two figures with the reason.

Rows answered by another version than the champion are counted, not compared (their labels are another
model's). Fewer rows than `monitor.min_rows`, or no figure at all, is `insufficient`, never `pass`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from stages.config.monitor import MonitorParams
from stages.core.label_sets import LABEL_SET_SEPARATOR
from stages.data.drift import domain_auc, js_distance, label_distance
from stages.reports.base import ReportModel
from stages.reports.profile import DataProfile, windows_key

REPORT_FORMAT = 1
PREFIX, SUFFIX = "requests-", ".parquet"  # the request log's segment names (flows/commands/serve/reqlog.py)
COLUMNS = ("time", "version", "label", "score", "tokens", "unknown_tokens", "windows", "truncated", "text")
COUNTS = ("tokens", "unknown_tokens", "windows", "truncated")  # how the served version read each text
Outcome = Literal["pass", "warn", "fail", "insufficient"]
FigureOutcome = Literal["pass", "warn", "fail", "skip"]
_RANK = {"pass": 0, "warn": 1, "fail": 2}
_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$")


@dataclass(frozen=True)
class Reference:
    """What the champion recorded at registration: its version, data profile and test predictions."""

    version: str
    profile: DataProfile
    predictions: pd.DataFrame  # reports/predictions.csv: one row per test text, `pred` and `score` at least


class Figure(ReportModel):
    """One figure, its thresholds and what they make of it (`skip` with the reason when not computed)."""

    name: str
    value: float | None
    warn: float
    fail: float
    outcome: FigureOutcome
    reason: str


class MonitorReport(ReportModel):
    """reports/monitor/<window end>.json: the window, the champion, the rows, each figure and the outcome."""

    format: int
    outcome: Outcome
    reason: str
    window: dict[str, str | float]  # start, end (UTC ISO), hours
    champion: str
    rows: dict[str, int]  # champion, other_versions, with_text
    label_shares: dict[str, dict[str, float]]  # served, champion_test
    confidence: dict[str, float | None]  # served_mean, champion_test_mean
    # served, champion_train: share of texts per number of windows (or `cut`); {} where not known
    window_shares: dict[str, dict[str, float]] = Field(default_factory=dict)
    unknown: dict[str, float | None] = Field(default_factory=dict)  # served_rate, champion_train_share
    figures: list[Figure]
    notes: list[str]


def parse_since(text: str) -> float:
    """`30m`, `24h`, `7d` (or a bare number of hours) as hours; ValueError names the form."""
    if re.fullmatch(r"\s*\d+(?:\.\d+)?\s*", text):
        hours = float(text)
    elif m := _SINCE.match(text):
        hours = float(m[1]) * {"m": 1 / 60, "h": 1.0, "d": 24.0}[m[2]]
    else:
        raise ValueError(f"--since {text!r}: give a duration such as 30m, 24h or 7d")
    if hours <= 0:
        raise ValueError(f"--since {text!r}: the window must be longer than zero")
    return hours


def read_log(folder: Path, start: datetime) -> pd.DataFrame:
    """The request log's rows answered at or after `start` (UTC), from every segment written since then."""
    cutoff = start.timestamp()
    tables = []
    for seg in sorted(folder.glob(f"{PREFIX}*{SUFFIX}")) if folder.is_dir() else []:
        if seg.stat().st_mtime < cutoff:  # written before the window opened: every row in it is older
            continue
        table = pq.read_table(seg)
        tables.append(table.select([c for c in COLUMNS if c in table.column_names]))
    if not tables:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    df = pa.concat_tables(tables, promote_options="default").to_pandas()
    df = df[df["time"] >= pd.Timestamp(start)]
    return df.reset_index(drop=True)


def _judge(name: str, value: float | None, warn: float, fail: float, what: str, skipped: str) -> Figure:
    if value is None:
        return Figure(name=name, value=None, warn=warn, fail=fail, outcome="skip", reason=skipped)
    outcome: FigureOutcome = "fail" if value >= fail else "warn" if value >= warn else "pass"
    return Figure(
        name=name,
        value=round(value, 4),
        warn=warn,
        fail=fail,
        outcome=outcome,
        reason=f"{what} {value:.3f} (monitor.{name}_warn {warn}, monitor.{name}_fail {fail})",
    )


def _shares(counts: pd.Series) -> dict[str, float]:
    total = float(counts.sum())
    return {str(k): round(float(v) / total, 4) for k, v in counts.sort_index().items()} if total else {}


def _length_js(texts: pd.Series, profile: DataProfile) -> tuple[float | None, str]:
    """JS distance between served character lengths and the profile's test (else train) histogram."""
    edges = profile.length_bins.get("chars")
    hists = profile.length_hist.get("chars", {})
    split = "test" if hists.get("test") else "train"
    if not edges or not hists.get(split):
        return None, "the champion's profile has no character-length histogram"
    lengths = np.clip(texts.str.len().to_numpy(), 0, edges[-1] - 1)
    served = np.histogram(lengths, bins=edges)[0]
    return js_distance(served.tolist(), hists[split]), split


NO_TEXT = "the request log holds no texts (serve.log_texts is false)"


def _prediction_figures(
    served_counts: pd.Series,
    test_counts: pd.Series,
    served_conf: float | None,
    test_conf: float | None,
    p: MonitorParams,
) -> list[Figure]:
    """The figures of what the champion predicted: the label mix and the confidence."""
    both = bool(len(served_counts)) and bool(len(test_counts))
    return [
        _judge(
            "label_js",
            label_distance(
                {str(k): int(v) for k, v in served_counts.items()},
                {str(k): int(v) for k, v in test_counts.items()},
            )
            if both
            else None,
            p.label_js_warn,
            p.label_js_fail,
            "predicted-label distance from the champion's test predictions",
            "no served rows or no test predictions",
        ),
        _judge(
            "confidence_drop",
            None if served_conf is None or test_conf is None else test_conf - served_conf,
            p.confidence_drop_warn,
            p.confidence_drop_fail,
            "mean top probability fell by",
            "no served rows or no test predictions",
        ),
    ]


def label_counts(labels: pd.Series, sets: bool) -> pd.Series:
    """Predictions per label, most first: one per row, or (`sets`, a multi-label champion) one per label of
    each row's "|"-joined set."""
    names = labels.astype(str)
    if sets:
        names = names.str.split(LABEL_SET_SEPARATOR).explode()
    return names.value_counts()


def _text_figures(rows: int, texts: pd.Series, ref: Reference, p: MonitorParams) -> list[Figure]:
    """The figures of the served texts themselves: their lengths and a domain classifier."""
    length, how = _length_js(texts, ref.profile) if len(texts) else (None, NO_TEXT)
    if rows < p.min_rows:
        auc, auc_how = None, f"too few rows for a domain classifier (monitor.min_rows {p.min_rows})"
    elif len(texts):
        sample = [r.text for r in ref.profile.sample]
        cut = max((len(t) for t in sample), default=1000)
        served = [t[:cut] for t in texts.iloc[-p.max_texts :]]
        auc, auc_how = domain_auc(sample, served)
    else:
        auc, auc_how = None, NO_TEXT
    return [
        _judge(
            "length_js",
            length,
            p.length_js_warn,
            p.length_js_fail,
            f"text-length distance from the {how} split",
            how,
        ),
        _judge(
            "domain_auc",
            auc,
            p.domain_auc_warn,
            p.domain_auc_fail,
            f"served texts told from the champion's sample ({auc_how}) with ROC AUC",
            auc_how,
        ),
    ]


NO_COUNTS = (
    "the request log holds no token counts (rows written by a server older than them, or a model that is "
    "not ftpipe's text classifier)"
)


def counted_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows whose log holds how the served version read the text (tokens, windows, unknown tokens)."""
    if not all(c in rows for c in COUNTS):
        return pd.DataFrame({c: pd.Series(dtype=float) for c in COUNTS})
    return rows.dropna(subset=list(COUNTS))


def served_windows(counted: pd.DataFrame) -> dict[str, int]:
    """Served rows per number of windows (or `cut`), keyed as the profile's `windows_hist`."""
    keys = [
        windows_key(int(w), bool(t)) for w, t in zip(counted["windows"], counted["truncated"], strict=True)
    ]
    return {k: keys.count(k) for k in sorted(set(keys))}


def _token_figures(
    counted: pd.DataFrame, ref: Reference, p: MonitorParams
) -> tuple[list[Figure], dict[str, dict[str, float]], dict[str, float | None]]:
    """How the champion's tokenizer read the served texts against its train split: windows per text and
    the unknown-token rate; with the window shares and the rates the report keeps."""
    split = "train"
    hist = (ref.profile.windows_hist or {}).get(split)
    unk_ref = (ref.profile.unk_share or {}).get(split)
    tokens = float(counted["tokens"].sum()) if len(counted) else 0.0
    unk = float(counted["unknown_tokens"].sum()) / tokens if tokens > 0 else None
    mine = served_windows(counted) if len(counted) else {}
    old = f"the champion's profile has no {{}} (version {ref.version} was registered before ftpipe kept it)"
    win_skip = NO_COUNTS if not mine else old.format("windows-per-text histogram")
    unk_skip = NO_COUNTS if unk is None else old.format("unknown-token share")
    figures = [
        _judge(
            "windows_js",
            label_distance(mine, hist) if mine and hist else None,
            p.windows_js_warn,
            p.windows_js_fail,
            f"windows-per-text distance from the champion's {split} split",
            win_skip,
        ),
        _judge(
            "unk_rate_increase",
            None if unk is None or unk_ref is None else unk - unk_ref,
            p.unk_rate_increase_warn,
            p.unk_rate_increase_fail,
            f"unknown-token rate above the champion's {split} split's ({unk_ref}) by",
            unk_skip,
        ),
    ]
    shares = {
        "served": _shares(pd.Series(mine, dtype=float)),
        f"champion_{split}": _shares(pd.Series(hist or {}, dtype=float)),
    }
    return figures, shares, {"served_rate": unk, f"champion_{split}_share": unk_ref}


def _verdict(figures: list[Figure], rows: int, ref: Reference, p: MonitorParams) -> tuple[Outcome, str]:
    """The window's outcome: insufficient below min_rows or without a figure, else the worst figure's."""
    judged = [f for f in figures if f.outcome != "skip"]
    if rows < p.min_rows:
        return "insufficient", (
            f"{rows} row(s) answered by the champion {ref.version} in the window; monitor.min_rows is {p.min_rows}"
        )
    if not judged:
        return "insufficient", "no figure could be computed: " + "; ".join(f.reason for f in figures)
    worst = max(judged, key=lambda f: _RANK[f.outcome])
    outcome: Outcome = worst.outcome if worst.outcome != "skip" else "pass"
    bad = [f for f in judged if f.outcome == outcome]
    return outcome, (
        "; ".join(f.reason for f in bad) if outcome != "pass" else "every figure under its warn threshold"
    )


def compare(
    rows: pd.DataFrame, ref: Reference, p: MonitorParams, start: datetime, end: datetime
) -> MonitorReport:
    """The monitor's report on `rows` (read_log's frame) against the champion's `ref`, judged by `p`."""
    notes: list[str] = []
    mine = rows[rows["version"].astype(str) == ref.version]
    others = len(rows) - len(mine)
    if others:
        notes.append(
            f"{others} row(s) answered by other versions than the champion {ref.version} were left out"
        )
    texts = mine["text"].dropna() if "text" in mine else pd.Series(dtype=object)
    texts = texts[texts.astype(str).str.len() > 0].astype(str)
    preds = ref.predictions
    sets = ref.profile.label_sets is not None  # a multi-label champion: "|"-joined sets, counted per label
    served_counts = label_counts(mine["label"], sets)
    test_counts = label_counts(preds["pred"], sets)
    if sets:
        notes.append("label sets: the label mix counts each label of a predicted set once (per-label shares)")
    served_conf = float(mine["score"].mean()) if len(mine) else None
    test_conf = float(preds["score"].mean()) if len(preds) else None
    figures = _prediction_figures(served_counts, test_counts, served_conf, test_conf, p)
    figures += _text_figures(len(mine), texts, ref, p)
    token_figures, window_shares, unknown = _token_figures(counted_rows(mine), ref, p)
    figures += token_figures
    outcome, reason = _verdict(figures, len(mine), ref, p)
    return MonitorReport(
        format=REPORT_FORMAT,
        outcome=outcome,
        reason=reason,
        window={
            "start": start.isoformat(),
            "end": end.isoformat(),
            "hours": round((end - start) / timedelta(hours=1), 4),
        },
        champion=ref.version,
        rows={"champion": len(mine), "other_versions": others, "with_text": len(texts)},
        label_shares={"served": _shares(served_counts), "champion_test": _shares(test_counts)},
        confidence={"served_mean": served_conf, "champion_test_mean": test_conf},
        window_shares=window_shares,
        unknown=unknown,
        figures=figures,
        notes=notes,
    )
