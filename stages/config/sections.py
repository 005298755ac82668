"""Which params class validates which params.yaml section: what `check`, `ftpipe check` and docs/params.md read.

A stage loads its own section with its class (stages/config/params.py `load_section`); this table is the
one list of them, so the check stage imports schemas, not stages.
"""

from __future__ import annotations

from pydantic import BaseModel

from stages.config.clean import CleanParams
from stages.config.evaluate import EvaluateParams
from stages.config.finetune import FinetuneParams
from stages.config.ingest import IngestParams
from stages.config.label import LabelParams
from stages.config.monitor import MonitorParams
from stages.config.register import RegisterParams
from stages.config.retrain import RetrainParams
from stages.config.serve import ServeParams
from stages.config.tokenize import TokenizeParams
from stages.config.validate import ValidateParams

# section -> the params class its stage loads (finetune also reads `tokenize`, checked as tokenize's)
STAGE_MODELS: dict[str, type[BaseModel]] = {
    "ingest": IngestParams,
    "clean": CleanParams,
    "tokenize": TokenizeParams,
    "label": LabelParams,
    "validate": ValidateParams,
    "finetune": FinetuneParams,
    "evaluate": EvaluateParams,
    "register": RegisterParams,
}
# sections that belong to no stage: known here, validated by flows/commands/check.py (`serve`: `ftpipe serve`,
# `monitor`: `ftpipe monitor`)
FLOW_SECTIONS = ("retrain", "serve", "monitor")
# every section's class, in params.yaml order: what `ftpipe check` validates and docs/params.md describes
ALL_MODELS: dict[str, type[BaseModel]] = {
    **STAGE_MODELS,
    "retrain": RetrainParams,
    "serve": ServeParams,
    "monitor": MonitorParams,
}
