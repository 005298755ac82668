"""The `monitor` section of params.yaml: `ftpipe monitor`'s window, minimum rows and every drift threshold.

No DVC stage reads it: the monitor (flows/commands/monitor/) does. It reads the request log that
`ftpipe serve` writes (`serve.log_dir`) and compares it with the champion's stored profile and its test
predictions (docs/orchestration.md, "Watching served traffic").
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from stages.config.params import StageParams


class MonitorParams(StageParams):
    """The `monitor` section of params.yaml (`ftpipe monitor`; docs/orchestration.md)."""

    since_hours: float = Field(
        24.0, gt=0.0, le=24.0 * 366, description="the window read from the request log (`--since`), in hours"
    )
    min_rows: int = Field(
        200,
        ge=1,
        description="rows answered by the champion in the window below which the outcome is `insufficient`",
    )
    max_texts: int = Field(
        1000, ge=20, description="served texts (newest first) the domain classifier reads at most"
    )
    label_js_warn: float = Field(
        0.15,
        gt=0.0,
        le=1.0,
        description="Jensen-Shannon distance (base 2) between the served predicted-label shares and the "
        "champion's test predictions at which the outcome is at least `warn`",
    )
    label_js_fail: float = Field(0.35, gt=0.0, le=1.0, description="... and `fail`")
    length_js_warn: float = Field(
        0.15,
        gt=0.0,
        le=1.0,
        description="JS distance between the served texts' character-length histogram and the champion's "
        "test split's (its stored profile's bins) for `warn`; needs `serve.log_texts`",
    )
    length_js_fail: float = Field(0.35, gt=0.0, le=1.0, description="... and `fail`")
    confidence_drop_warn: float = Field(
        0.05,
        gt=0.0,
        le=1.0,
        description="fall of the mean top probability from the champion's test predictions to the served "
        "rows for `warn`",
    )
    confidence_drop_fail: float = Field(0.15, gt=0.0, le=1.0, description="... and `fail`")
    domain_auc_warn: float = Field(
        0.75,
        gt=0.5,
        le=1.0,
        description="ROC AUC of a classifier telling the champion's sample texts from served texts "
        "(stages/data/drift.py `domain_auc`; 0.5 = indistinguishable) for `warn`; needs `serve.log_texts`",
    )
    domain_auc_fail: float = Field(0.9, gt=0.5, le=1.0, description="... and `fail`")
    windows_js_warn: float = Field(
        0.15,
        gt=0.0,
        le=1.0,
        description="JS distance between the shares of served texts read as 1, 2, ... windows (or cut: longer "
        "than the windows hold) and the champion's train split's, counted with its tokenizer, for `warn`; "
        "skipped for a champion whose profile predates the windows histogram",
    )
    windows_js_fail: float = Field(0.35, gt=0.0, le=1.0, description="... and `fail`")
    unk_rate_increase_warn: float = Field(
        0.01,
        gt=0.0,
        le=1.0,
        description="share of served tokens that are the champion tokenizer's unknown token, minus that share "
        "on its train split, for `warn` (0.01: one token in a hundred more); skipped for a champion whose "
        "profile predates the share",
    )
    unk_rate_increase_fail: float = Field(0.05, gt=0.0, le=1.0, description="... and `fail`")
    cooldown_hours: float = Field(
        24.0,
        gt=0.0,
        description="after a warn/fail event starts a retrain, further events start none for this long "
        "(prefect.yaml's trigger `within`, in seconds: keep them equal)",
    )

    @model_validator(mode="after")
    def _warn_below_fail(self) -> Self:
        for name in (
            "label_js",
            "length_js",
            "confidence_drop",
            "domain_auc",
            "windows_js",
            "unk_rate_increase",
        ):
            warn, fail = getattr(self, f"{name}_warn"), getattr(self, f"{name}_fail")
            if warn > fail:
                raise ValueError(
                    f"monitor.{name}_warn ({warn}) is above monitor.{name}_fail ({fail}); "
                    "set warn at or below fail"
                )
        return self
