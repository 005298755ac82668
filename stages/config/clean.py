"""The `clean` section of params.yaml: how texts are normalised and which rows are rejected."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from stages.config.params import StageParams


class CleanParams(StageParams):
    """The `clean` section of params.yaml."""

    strip_html: bool = Field(True, description="remove HTML tags, comments, scripts and styles")
    strip_ansi: bool = Field(True, description="remove ANSI terminal escape sequences")
    strip_control: bool = Field(
        True, description="remove control characters (NUL included) and invisible format characters"
    )
    unicode_form: Literal["NFKC", "NFC", "NFKD", "NFD", "none"] = Field(
        "NFKC", description="Unicode normalisation form: NFKC | NFC | NFKD | NFD | none"
    )
    fold_whitespace: bool = Field(True, description="collapse runs of whitespace into one space")
    lowercase: bool = Field(False, description="lowercase every text")
    min_words: int = Field(
        3,
        ge=0,
        description="fewer words is `too_short`; each Chinese/Japanese/Korean character counts as one word",
    )
    max_chars: int = Field(
        100_000, ge=1, description="a size guard in characters (what a text costs), not a length rule"
    )
    dedupe: bool = Field(
        True, description="collapse exact duplicates; duplicates with different labels are rejected"
    )
    max_reject_fraction: float = Field(
        0.2, ge=0.0, le=1.0, description="fail the stage if more than this share of rows is rejected"
    )
    warn_class_fraction: float = Field(
        0.03,
        ge=0.0,
        le=1.0,
        description="report (clean.json, the run summary) a length limit removing more than this share "
        "of one class",
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "min_chars" in data:
            raise ValueError(
                f"`clean.min_chars` was replaced by `clean.min_words` (it counted characters, so an 8-character "
                "Chinese saying was as short as 'Hi there'; words count each CJK character as one). Replace "
                f"`min_chars: {data['min_chars']}` with `min_words: 3` (about 20 characters of English)"
            )
        return data

    @model_validator(mode="after")
    def _range(self) -> CleanParams:
        if self.min_words > self.max_chars:
            raise ValueError(
                f"min_words ({self.min_words}) cannot be met under max_chars ({self.max_chars}): a word is at "
                "least one character"
            )
        return self
