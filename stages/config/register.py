"""The `register` section of params.yaml: the registered model, its promotion gate, and the registry's retries.

`RetryPolicy` is the value those retry keys become; stages/registry/tracking.py applies it to every MLflow call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from stages.config.params import StageParams


@dataclass(frozen=True)
class RetryPolicy:
    """How long ftpipe waits for the tracking store: the one retry layer of every MLflow call.

    A call is tried, and after a transient failure retried with waits backoff_s, 2*backoff_s, ... up to
    `retries` more times, and never past `timeout_s` from its start: each attempt's requests wait at most
    `request_timeout_s` (and never past the deadline) for an answer, and MLflow's own HTTP retries are
    off, so a server that is down or hangs costs at most `timeout_s` before `TrackingUnavailable`.
    """

    retries: int = 4
    backoff_s: float = 1.0
    timeout_s: float = 120.0

    @property
    def request_timeout_s(self) -> float:
        """One request's wait for an answer: a hanging server still gets retries + 1 attempts."""
        return max(1.0, self.timeout_s / (self.retries + 1))


# what `register.gate.primary_metric` may name besides `auto` (stages/gate/checks.py PRIMARY_METRICS for one
# label per text, stages/gate/sets.py SET_METRICS for label sets); all are higher-is-better
GateMetric = Literal[
    "auto",
    "accuracy",
    "subset_accuracy",
    "micro_f1",
    "micro_precision",
    "micro_recall",
    "macro_f1",
    "macro_precision",
    "macro_recall",
    "weighted_f1",
    "weighted_precision",
    "weighted_recall",
]


class GateParams(StageParams):
    """`register.gate`: what a version must clear to become `champion`."""

    policy: Literal["non_inferiority", "superiority"] = Field(
        "non_inferiority", description="non_inferiority for retraining on new data, superiority for recipes"
    )
    primary_metric: GateMetric = Field(
        "auto",
        description="the metric the gate compares on: auto = reports/metrics.json `primary_metric` (accuracy "
        "for one label per text, micro_f1 for label sets), or a metric evaluate reports for both the model "
        "and the baseline",
    )
    min_primary: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="floor on the primary metric (metrics.json `primary_metric`); null = no floor: the "
        "baseline (and the champion) decide",
    )
    baseline_margin: float = Field(
        0.0,
        ge=-1.0,
        le=1.0,
        description="a model name's first version (no champion): how far it must lead the TF-IDF baseline "
        "on the primary metric (negative: how far it may trail)",
    )
    baseline_tolerance: float = Field(
        0.02,
        ge=0.0,
        le=1.0,
        description="a later version (a champion exists): how far it may trail the TF-IDF baseline on the "
        "primary metric",
    )
    margin: float = Field(
        0.01,
        ge=0.0,
        le=1.0,
        description="non_inferiority: how far the candidate may trail the champion (on rows neither saw)",
    )
    min_improvement: float = Field(
        0.005,
        ge=-1.0,
        le=1.0,
        description="superiority: primary-metric gain over the champion needed (on rows neither saw)",
    )
    significance: float = Field(
        0.05,
        gt=0.0,
        le=1.0,
        description="McNemar alpha: superiority needs p below it, candidate ahead; non_inferiority fails on a one-sided p below it",
    )
    bootstrap_samples: int = Field(
        2000,
        ge=200,
        le=100_000,
        description="label sets (label.task multi_label): resamples of the compared rows in the paired "
        "bootstrap of the primary metric's difference (seeded: the same decision at every run)",
    )
    max_class_drop: float = Field(
        0.05, ge=0.0, le=1.0, description="largest fall of any class's recall or F1 vs the champion"
    )
    min_class_rows: int = Field(5, ge=1, description="compared rows a class needs for the per-class guard")
    allow_label_change: bool = Field(
        False, description="let a version whose label set differs from the champion's pass the gate"
    )
    max_drift_auc: float | None = Field(
        None,
        ge=0.5,
        le=1.0,
        description="domain-classifier AUC above which drift fails (the drift stage and the gate); null = drift only warns",
    )
    warn_drift_auc: float = Field(
        0.75,
        ge=0.5,
        le=1.0,
        description="domain-classifier AUC (the champion's texts vs the new ones) that warns",
    )


class RegisterParams(StageParams):
    """The `register` section of params.yaml: the registered model, the gate, and how to reach the store."""

    model_name: str = Field(
        "ftpipe-bbc-news",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
        description="registered model name, also the MLflow experiment's name",
    )
    gate: GateParams = Field(GateParams(), description="what a version must clear to become `champion`")
    retries: int = Field(
        4,
        ge=0,
        le=20,
        description="extra attempts of a registry call that failed (down, timed out, 5xx, locked)",
    )
    backoff_s: float = Field(1.0, ge=0.0, le=60.0, description="first wait; doubles each retry")
    timeout_s: float = Field(
        120.0,
        ge=1.0,
        le=3600.0,
        description="most seconds one registry call may spend failing (retries, waits and a hanging "
        "server included) before the command stops with a clear message",
    )
    batch_size: int = Field(
        32, ge=1, description="served model's batch: up to batch_size x tokenize.max_length tokens"
    )
    quantize: Literal["none", "int8"] = Field(
        "none",
        description="the served model's default: none (fp32) or int8 (dynamic quantization of its "
        "Linear layers, CPU; `python -m bench.inference` measures its speed and agreement with fp32)",
    )
    verify_rows: int = Field(64, ge=1, description="test rows the registered model must predict as evaluated")
    verify_min_agreement: float = Field(
        0.95, ge=0.0, le=1.0, description="share of the verify rows that must agree before any alias moves"
    )
    await_registration_s: int = Field(
        300, ge=1, description="seconds to wait for the model version to become READY"
    )

    def policy(self) -> RetryPolicy:
        """The retry and timeout policy of every MLflow call made for this registered model."""
        return RetryPolicy(self.retries, self.backoff_s, self.timeout_s)
