"""A version's smoke set: predictions it recorded at registration, which a server reproduces before serving it.

    record = SmokeRecord.from_output(texts, out)       # register: the verify rows, as the version predicted them
    why = record.mismatch(candidate_out, tolerance)    # `ftpipe serve`: None, or why the candidate is refused

The register stage's load-back check (`Registry.verify`) predicts the first `register.verify_rows` test rows
with the version as registered and keeps the texts, labels and every class probability as the run artifact
`smoke.json` (version tag `ftpipe.smoke`). A server that loads the version later must give the same
probabilities within its tolerance, and the same label wherever the recorded top two classes were further
apart than twice the tolerance (closer ones may swap within it). A multi-label version's record keeps its
thresholds: a label may enter or leave a set only where its recorded probability lay within twice the
tolerance of its threshold.

Versions registered before this record existed have none; for them the stated rule is `sanity`: the fixed
`FALLBACK_TEXTS` must each get one row whose label is one of the version's labels, whose score is the
largest probability, and whose probabilities are finite and sum to 1 within the tolerance.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from stages.core.label_sets import split_set

SMOKE_FORMAT = 1
PROB_PREFIX = "p_"  # the served model's probability columns (stages/serving/textclf.py)
FALLBACK_TEXTS = (
    "Shares rose after the bank's quarterly profit beat forecasts.",
    "The striker scored twice in the second half of the cup final.",
    "Parliament will vote on the new budget next week.",
    "The film won three awards at the festival on Sunday.",
    "A new phone chip promises longer battery life.",
)


def probability_columns(out: pd.DataFrame) -> list[str]:
    """The `p_<label>` columns of a served prediction, in the model's label order."""
    return [str(c) for c in out.columns if str(c).startswith(PROB_PREFIX)]


@dataclass(frozen=True)
class SmokeRecord:
    """Texts and what the registered version predicted for them: labels and each class's probability."""

    texts: list[str]
    labels: list[str]
    classes: list[str]  # label names in the model's order: the columns of `probabilities`
    probabilities: list[list[float]]
    thresholds: list[float] | None = None  # a multi-label version's per-label thresholds (labels are sets)

    @classmethod
    def from_output(
        cls, texts: list[str], out: pd.DataFrame, thresholds: list[float] | None = None
    ) -> SmokeRecord:
        """The record of `out`, the served model's prediction of `texts` with `probabilities` on;
        `thresholds` for a multi-label version, whose labels are sets decided by them."""
        cols = probability_columns(out)
        if not cols:
            raise ValueError("the prediction has no p_<label> columns: predict with probabilities on")
        return cls(
            list(texts),
            out["label"].astype(str).tolist(),
            [c[len(PROB_PREFIX) :] for c in cols],
            [[float(v) for v in row] for row in out[cols].to_numpy().tolist()],
            thresholds,
        )

    def to_json(self) -> str:
        sets = {} if self.thresholds is None else {"thresholds": self.thresholds}
        return json.dumps(
            {"format": SMOKE_FORMAT, "texts": self.texts, "labels": self.labels, "classes": self.classes}
            | {"probabilities": self.probabilities}
            | sets,
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str | bytes, what: str) -> SmokeRecord:
        """The record in `text`; ValueError naming `what` when it is not one this code wrote."""
        try:
            data: Any = json.loads(text)
            if data.get("format") != SMOKE_FORMAT:
                raise ValueError(f"format {data.get('format')!r}, not {SMOKE_FORMAT}")
            rec = cls(
                [str(t) for t in data["texts"]],
                [str(lbl) for lbl in data["labels"]],
                [str(c) for c in data["classes"]],
                [[float(v) for v in row] for row in data["probabilities"]],
                [float(t) for t in data["thresholds"]] if "thresholds" in data else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{what} is not a smoke record ftpipe can read: {exc}") from None
        n = len(rec.texts)
        if (
            len(rec.labels) != n
            or len(rec.probabilities) != n
            or any(len(row) != len(rec.classes) for row in rec.probabilities)
        ):
            raise ValueError(f"{what}: its texts, labels and probabilities do not have the same rows")
        return rec

    def mismatch(self, out: pd.DataFrame, tolerance: float) -> str | None:
        """Why `out` (the candidate's prediction of `texts`, probabilities on) does not reproduce this
        record within `tolerance`, or None."""
        if len(out) != len(self.texts):
            return f"it gave {len(out)} rows for the {len(self.texts)} recorded texts"
        cols = [f"{PROB_PREFIX}{c}" for c in self.classes]
        if probability_columns(out) != cols:
            return f"it gives the classes {probability_columns(out)}, the record {cols}"
        got = out[cols].to_numpy(dtype=float)
        worst, at = 0.0, 0
        for i, row in enumerate(self.probabilities):
            diff = max(abs(a - b) for a, b in zip(row, got[i].tolist(), strict=True))
            if not math.isfinite(diff) or diff > worst:
                worst, at = (math.inf if not math.isfinite(diff) else diff), i
        if worst > tolerance:
            return (
                f"row {at}'s probabilities differ from those recorded at registration by up to {worst:.4g} "
                f"(serve.smoke_tolerance = {tolerance:g}; {len(self.texts)} recorded rows)"
            )
        labels = out["label"].astype(str).tolist()
        if self.thresholds is not None:
            return self._set_mismatch(labels, tolerance)
        for i, (want, row) in enumerate(zip(self.labels, self.probabilities, strict=True)):
            top = sorted(row, reverse=True)
            margin = top[0] - top[1] if len(top) > 1 else 1.0
            if labels[i] != want and margin > 2 * tolerance:
                return f"row {i} is labelled {labels[i]!r}, recorded {want!r} (top-two margin {margin:.3f})"
        return None

    def _set_mismatch(self, labels: list[str], tolerance: float) -> str | None:
        """Label sets: a label may come or go only where its recorded probability lay within twice the
        tolerance of its threshold (a row none of whose labels passed, decided by the fallback, is not judged)."""
        assert self.thresholds is not None
        for i, (want, row) in enumerate(zip(self.labels, self.probabilities, strict=True)):
            if labels[i] == want or all(p < t for p, t in zip(row, self.thresholds, strict=True)):
                continue
            moved = set(split_set(labels[i])) ^ set(split_set(want))
            for name in sorted(moved):
                k = self.classes.index(name) if name in self.classes else -1
                gap = abs(row[k] - self.thresholds[k]) if k >= 0 else math.inf
                if gap > 2 * tolerance:
                    return (
                        f"row {i} is labelled {labels[i]!r}, recorded {want!r} (`{name}` was {gap:.3f} from "
                        "its threshold)"
                    )
        return None

    def max_difference(self, out: pd.DataFrame) -> float:
        """The largest difference of any class probability from the record (for the server's log)."""
        got = out[[f"{PROB_PREFIX}{c}" for c in self.classes]].to_numpy(dtype=float)
        return max(
            (
                abs(a - b)
                for row, g in zip(self.probabilities, got.tolist(), strict=True)
                for a, b in zip(row, g, strict=True)
            ),
            default=0.0,
        )


def sanity(out: pd.DataFrame, n_texts: int, labels: list[str] | None, tolerance: float) -> str | None:
    """The stated rule for a version without a smoke record: why `out` (its prediction of `n_texts`
    FALLBACK_TEXTS, probabilities on where it can) is not a classifier's answer, or None."""
    if len(out) != n_texts or list(out.columns[:2]) != ["label", "score"]:
        return f"it gave columns {list(out.columns)} and {len(out)} rows for {n_texts} texts"
    for i, row in enumerate(out.to_dict("records")):
        if labels is not None and str(row["label"]) not in labels:
            return f"row {i} is labelled {row['label']!r}, not one of the version's labels {labels}"
        score = float(row["score"])
        if not 0.0 <= score <= 1.0:
            return f"row {i}'s score {score!r} is not a probability"
        probs = [float(row[c]) for c in probability_columns(out)]
        if probs and (
            not all(math.isfinite(p) for p in probs)
            or abs(sum(probs) - 1.0) > tolerance
            or abs(max(probs) - score) > tolerance
        ):
            return f"row {i}'s probabilities {probs} do not sum to 1 around its score {score:.4f}"
    return None
