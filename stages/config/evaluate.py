"""The `evaluate` section of params.yaml: inference, calibration, error report and the TF-IDF baseline."""

from __future__ import annotations

from pydantic import Field

from stages.config.params import StageParams


class EvaluateParams(StageParams):
    """The `evaluate` section of params.yaml."""

    batch_size: int = Field(64, ge=1, description="inference batch size")
    ece_bins: int = Field(
        10, ge=1, le=100, description="equal-width confidence bins for the expected calibration error"
    )
    worst_errors: int = Field(
        25, ge=0, description="rows in reports/worst_errors.csv (the highest-confidence mistakes)"
    )
    excerpt_chars: int = Field(300, ge=20, description="characters of text shown per worst error")
    baseline_ngram_max: int = Field(
        2, ge=1, le=3, description="TF-IDF + logistic regression baseline: word n-grams 1..n"
    )
    baseline_min_df: int = Field(2, ge=1, description="baseline: fewest documents a term must appear in")
    baseline_max_features: int | None = Field(
        None, ge=1, description="baseline: most TF-IDF features kept; null keeps all"
    )
    baseline_c: float = Field(
        10.0, gt=0.0, description="baseline: inverse L2 regularisation strength of the logistic regression"
    )
    baseline_max_iter: int = Field(2000, ge=10, description="baseline: most solver iterations")
