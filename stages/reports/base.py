"""The common ground of the report models: extra keys kept, frozen, and a dump that changes no byte."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class ReportModel(BaseModel):
    """A report, or a part of one. Keys the model does not name are kept as they came (`extra="allow"`),
    so a report written by an older or newer stage still parses and the file keeps every key."""

    model_config = ConfigDict(extra="allow", frozen=True)

    def dump(self) -> dict[str, Any]:
        """The report as plain data, exactly the keys it was built or read with (`exclude_unset`: an
        optional field the writer left out stays out). Python mode, not `mode="json"`: `write_json`
        does the JSON, and the JSON mode would turn an extra `inf` into null or refuse a numpy scalar."""
        return self.model_dump(exclude_unset=True)


def problems(exc: ValidationError) -> str:
    """A report's validation errors on one line (`key: what is wrong; ...`), for an error that names the file."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'top level'}: {e['msg']}" for e in exc.errors())
