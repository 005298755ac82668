"""How short a text the model was trained on, so predict can say which inputs are shorter than all of it.

    lengths = trained_lengths(registry, model_version)   # None when the version stores neither figure
    lengths.too_short("x")                               # True: under the shortest it trained on
    lengths.warning(count=1, rows=3, first="row 2 (id = 'b')")

Two figures a registered version keeps, each a floor under every training text: `clean.min_words`,
logged with the run that registered it (the clean stage dropped every text with fewer words), and the
lower edge of the first non-empty character bin of the train split in its stored data profile (the
compact profile keeps lengths in fixed bins, not a minimum: stages/data/profile.py). A text under
either floor is shorter than anything the model saw; its label is a guess the score does not show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from stages.data.words import count_words
from stages.registry.client import Registry
from stages.registry.tracking import RegistryError, TrackingUnavailable, with_retries

MIN_WORDS_PARAM = "clean.min_words"


@dataclass(frozen=True)
class TrainedLengths:
    """The floors under every text version `version` trained on; None where it stores no such figure."""

    version: str
    words: int | None  # clean.min_words of its run
    chars: int | None  # lower edge of the train split's first non-empty character bin in its profile

    @classmethod
    def from_records(cls, version: str, profile: Any, run_params: dict[str, str]) -> TrainedLengths | None:
        """From the stored profile (as stored) and the run's params; None when neither gives a floor."""
        words = _int(run_params.get(MIN_WORDS_PARAM))
        chars = _char_floor(profile)
        if not words and not chars:  # a floor of 0 says nothing
            return None
        return cls(version, words or None, chars or None)

    def too_short(self, text: str) -> bool:
        if self.chars is not None and len(text) < self.chars:
            return True
        return self.words is not None and count_words(text) < self.words

    def warning(self, count: int, rows: int, first: str) -> str:
        """One line: how many texts, under which floor and where it is recorded, the first of them."""
        floors = []
        if self.words is not None:
            floors.append(f"fewer than {self.words} words ({MIN_WORDS_PARAM} of its run)")
        if self.chars is not None:
            floors.append(
                f"under {self.chars} characters (the shortest length bin of its stored data profile's train "
                "split)"
            )
        return (
            f"ftpipe predict: warning: {count} of {rows} texts are shorter than any version {self.version} "
            f"trained on: {' or '.join(floors)}; their labels are guesses the score does not show (first: "
            f"{first})."
        )


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _char_floor(profile: Any) -> int | None:
    """The lower edge of the first non-empty `chars` bin of the train split, or None (no such profile)."""
    try:
        edges = profile["length_bins"]["chars"]
        counts = profile["length_hist"]["chars"]["train"]
        first = next(i for i, n in enumerate(counts) if n > 0)
        return int(edges[first])
    except (KeyError, TypeError, IndexError, ValueError, StopIteration):
        return None


def trained_lengths(reg: Registry, mv: ModelVersion) -> TrainedLengths | None:
    """The floors version `mv` records, or None when it records none or they cannot be read (a warning
    is not worth failing the run: the prediction goes on without it)."""
    run_id = mv.run_id
    try:
        profile = reg.record(str(mv.version)).profile
        params = (
            dict(with_retries(lambda: reg.client.get_run(run_id), reg.uri, reg.policy).data.params)
            if run_id
            else {}
        )
    except (RegistryError, TrackingUnavailable, MlflowException, OSError, ValueError):
        return None
    return TrainedLengths.from_records(str(mv.version), profile, params)
