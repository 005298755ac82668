"""The `validate` section of params.yaml: the integrity thresholds that stop the DAG before finetune."""

from __future__ import annotations

from pydantic import Field

from stages.config.params import StageParams


class ValidateParams(StageParams):
    """The `validate` section of params.yaml: the integrity thresholds and the profile's size."""

    min_rows_per_split: int = Field(
        5, ge=1, description="fewest rows a class needs in each of train, validation and test"
    )
    max_unk_share: float = Field(
        0.05, ge=0.0, le=1.0, description="most unknown tokens (share of tokens), per split and class"
    )
    min_median_chars: int = Field(
        20, ge=0, description="floor on the median text length in characters, per split and class"
    )
    min_batch_median_ratio: float = Field(
        0.2,
        ge=0.0,
        le=1.0,
        description="a batch file's median length must be at least this share of the other files' median",
    )
    min_batch_rows: int = Field(20, ge=1, description="batch files with fewer rows skip that ratio check")
    top_ngrams: int = Field(10, ge=0, le=100, description="most frequent word 1-2-grams shown per class")
    sample_size: int = Field(
        300, ge=0, le=5000, description="train/validation texts kept in the compact profile (for drift)"
    )
    sample_chars: int = Field(1000, ge=50, description="characters kept per sampled text")
