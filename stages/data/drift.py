"""Drift between the data the champion learned from and a new one: pure functions on two data profiles.

    from stages.data.drift import compare_profiles
    figures = compare_profiles(champion_profile, candidate_profile, champion_trained_on)

A profile is the compact summary the validate stage writes to data/processed/profile.json (format 1,
`stages.reports.profile.DataProfile`): `classes`, `rows` and `class_counts` per split, fixed `length_bins`
with `length_hist` per split (chars and tokens), and a `sample` of up to ~300 train/validation rows (id,
group, split, label, text cut to 1000 characters). The register stage stores it with every model version; the flow compares the new profile with
the champion's before finetune, and the gate does it again at registration. Three figures:

- `label_js`: Jensen-Shannon distance (base 2: 0 = same, 1 = disjoint) between the train class counts
  (label sets, `label.task: multi_label`: each label's rows, so the per-label shares; and a fourth figure,
  `cardinality_js`, the same distance between the train splits' labels-per-text histograms).
- `length_js`: the same distance between the train token-length histograms (skipped if the bins differ).
- `domain_auc`: TF-IDF + logistic regression telling the champion's sample texts from the candidate's
  sample texts that the champion never trained on (not in its trained-on record), as stratified k-fold
  cross-validated ROC AUC (seeded): 0.5 = indistinguishable, 1 = wholly different data. Skipped with a
  reason when either side has fewer than `MIN_TEXTS` texts.

How the figures decide anything is the gate's business (`stages.gate.checks.drift_check`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NotRequired, TypedDict

import numpy as np
from scipy.spatial.distance import jensenshannon
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline

from stages.data.trained_on import TrainedOn
from stages.reports.profile import DataProfile, as_profile


class DriftFigures(TypedDict):
    """What `compare_profiles` finds: the three figures (None where skipped), how, and why any was skipped."""

    label_js: float | None
    length_js: float | None
    domain_auc: float | None
    domain_classifier: str | None
    texts: dict[str, int] | None  # champion, candidate_new, candidate_seen
    trained_on_record: bool
    notes: list[str]
    cardinality_js: NotRequired[float | None]  # label sets (label.task multi_label) only


MIN_TEXTS = 20  # per side, below which the domain classifier is not trained
FOLDS = 5


def js_distance(p: Sequence[float], q: Sequence[float]) -> float | None:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two count vectors; None if either is empty."""
    a, b = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    if a.shape != b.shape or a.sum() <= 0 or b.sum() <= 0:
        return None
    return float(np.clip(jensenshannon(a / a.sum(), b / b.sum(), base=2), 0.0, 1.0))


def label_distance(a: dict[str, int], b: dict[str, int]) -> float | None:
    """JS distance between two {class: count} maps, over the union of their classes."""
    classes = sorted(set(a) | set(b))
    return js_distance([a.get(c, 0) for c in classes], [b.get(c, 0) for c in classes])


def domain_auc(
    texts_a: Sequence[str], texts_b: Sequence[str], seed: int = 0, folds: int = FOLDS
) -> tuple[float | None, str]:
    """Cross-validated ROC AUC of a TF-IDF + logistic-regression classifier telling `a` from `b`.

    Returns (auc, how): `how` names the folds and sizes, or why no AUC was computed.
    """
    n_a, n_b = len(texts_a), len(texts_b)
    if min(n_a, n_b) < MIN_TEXTS:
        return None, f"too few texts to train a domain classifier ({n_a} vs {n_b}; needs {MIN_TEXTS} each)"
    k = min(folds, n_a, n_b)
    x = [*texts_a, *texts_b]
    y = np.array([0] * n_a + [1] * n_b)
    clf = make_pipeline(
        TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), max_features=20000),
        LogisticRegression(max_iter=1000, class_weight="balanced"),
    )
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    scores = cross_val_score(clf, x, y, cv=cv, scoring="roc_auc")
    return float(np.mean(scores)), f"TF-IDF + logistic regression, {k}-fold CV, {n_a} vs {n_b} texts"


def _domain_figure(
    champ_texts: list[str], new_texts: list[str], seen: int, seed: int
) -> tuple[float | None, str]:
    """The domain AUC of the new texts against the champion's, or why there is none."""
    if not new_texts and seen:  # the champion's own data again: nothing new, rather than "too few"
        return None, (
            f"all {seen} of the candidate's sample texts are the champion's own (trained or validated on, or "
            f"in its {len(champ_texts)}-text sample): no new text to tell apart from the champion's data"
        )
    return domain_auc(champ_texts, new_texts, seed=seed)


def new_sample(
    champion_profile: DataProfile, candidate_profile: DataProfile, trained_on: TrainedOn | None
) -> tuple[list[str], int]:
    """The candidate's sample texts the champion never trained on, and how many were left out as seen.

    Seen: the id or group key is in the champion's trained-on record (without one: in the champion's own
    sample, the only part of its data the profile names), or the text is verbatim in the champion's sample
    (a copy on both sides only confuses the classifier: it would score below chance).
    """
    sample = candidate_profile.sample
    champ = champion_profile.sample
    if trained_on is None:
        trained_on = TrainedOn.from_splits({"sample": ([r.id for r in champ], [r.group for r in champ])})
    seen = trained_on.seen([r.id for r in sample], [r.group for r in sample])
    champ_texts = {r.text for r in champ}
    seen = [s or r.text in champ_texts for r, s in zip(sample, seen, strict=True)]
    return [r.text for r, s in zip(sample, seen, strict=True) if not s], sum(seen)


def label_set_figures(a: DataProfile, b: DataProfile, out: DriftFigures) -> None:
    """Label sets (label.task multi_label): `label_js` compares each label's share of the label occurrences
    (class_counts count, per label, the rows whose set holds it); add `cardinality_js`, the distance
    between the train splits' labels-per-text histograms. A profile of label sets against one of single
    labels gets a note instead."""
    if a.label_sets is None and b.label_sets is None:
        return
    if a.label_sets is None or b.label_sets is None:
        out["cardinality_js"] = None
        sets = "champion" if a.label_sets is not None else "candidate"
        out["notes"].append(
            f"only the {sets}'s profile holds label sets: label distance compares unlike counts"
        )
        return
    ha = a.label_sets.cardinality.get("train", {}).get("hist", {})
    hb = b.label_sets.cardinality.get("train", {}).get("hist", {})
    out["cardinality_js"] = label_distance(ha, hb)
    if out["cardinality_js"] is None:
        out["notes"].append("cardinality distance skipped: a train split has no label sets")


def compare_profiles(
    champion_profile: object,
    candidate_profile: object,
    champion_trained_on: TrainedOn | None,
    seed: int = 0,
) -> DriftFigures:
    """The three drift figures between the champion's profile and the candidate's, with notes on skips.

    Each profile is a `DataProfile` or one as stored (the champion's may come from any ftpipe version);
    one that cannot be compared (`stages.reports.profile.as_profile`) gives a note and no figures.
    Keys: `label_js`, `length_js`, `domain_auc` (each a float or None), `domain_classifier` (how the AUC
    was computed), `texts` (champion / candidate_new / candidate_seen sample sizes), `trained_on_record`
    (whether the champion's record was used) and `notes` (one sentence per figure that was skipped).
    """
    out: DriftFigures = {
        "label_js": None,
        "length_js": None,
        "domain_auc": None,
        "domain_classifier": None,
        "texts": None,
        "trained_on_record": champion_trained_on is not None,
        "notes": [],
    }
    parsed = []
    for who, prof in (("champion", champion_profile), ("candidate", candidate_profile)):
        found = as_profile(prof)
        if isinstance(found, str):
            out["notes"].append(f"{who}'s {found}: no drift figures")
            return out
        parsed.append(found)
    a, b = parsed
    label_set_figures(a, b, out)
    out["label_js"] = label_distance(a.class_counts.get("train", {}), b.class_counts.get("train", {}))
    if out["label_js"] is None:
        out["notes"].append("label distance skipped: a profile has no train class counts")
    bins_a, bins_b = a.length_bins.get("tokens"), b.length_bins.get("tokens")
    if bins_a is None or bins_a != bins_b:
        out["notes"].append("length distance skipped: the token-length bins differ between the profiles")
    else:
        out["length_js"] = js_distance(
            a.length_hist["tokens"].get("train", []), b.length_hist["tokens"].get("train", [])
        )
        if out["length_js"] is None:
            out["notes"].append("length distance skipped: a train token-length histogram is empty")
    champ_texts = [r.text for r in a.sample]
    new_texts, seen = new_sample(a, b, champion_trained_on)
    out["texts"] = {"champion": len(champ_texts), "candidate_new": len(new_texts), "candidate_seen": seen}
    auc, how = _domain_figure(champ_texts, new_texts, seen, seed)
    out["domain_auc"], out["domain_classifier"] = auc, how
    if auc is None:
        out["notes"].append(f"domain AUC skipped: {how}")
    if champion_trained_on is None:
        out["notes"].append(
            "the champion has no trained-on record: candidate texts were left out only when in its sample"
        )
    return out
