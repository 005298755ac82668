"""The `retrain` section of params.yaml: the Prefect flow's own knobs (no DVC stage depends on them)."""

from __future__ import annotations

from pydantic import Field

from stages.config.params import StageParams


class RetrainParams(StageParams):
    """The `retrain` section of params.yaml (the flow's own knobs; no DVC stage depends on them)."""

    schedule_cron: str = Field(
        "0 3 * * 1",
        min_length=1,
        description="`ftpipe serve-schedule`'s default cron (Mondays 03:00); keep prefect.yaml's cron equal",
    )
    timezone: str = Field("UTC", min_length=1, description="time zone of schedule_cron")
