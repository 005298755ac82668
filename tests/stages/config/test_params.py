"""The shipped params.yaml loads into every stage's params object; bad values give one clear message."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from stages.config.clean import CleanParams
from stages.config.ingest import IngestParams
from stages.config.monitor import MonitorParams
from stages.config.params import ParamsError, StageParams, load_section, validate_section
from stages.config.retrain import RetrainParams
from stages.config.sections import STAGE_MODELS
from stages.config.serve import ServeParams
from tests.conftest import REPO

REQUIRED = "(required)"


def stage_params_classes() -> dict[str, type[StageParams]]:
    """Each stage's `<Stage>Params` class from `stages.config.<stage>`, for the stages that own a section.

    A stage owns the params.yaml section of its name (check and drift read other stages' sections).
    """
    found = {}
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for stage in dvc["stages"]:
        if stage not in params:
            continue
        module = importlib.import_module(f"stages.config.{stage}")
        cls = getattr(module, f"{stage.capitalize()}Params")
        assert issubclass(cls, StageParams)
        assert STAGE_MODELS[stage] is cls  # the class `check` validates the section with
        found[stage] = cls
    return found


def test_every_dvc_stage_has_a_params_section_that_loads() -> None:
    classes = stage_params_classes()
    assert set(classes) == set(STAGE_MODELS)
    for section, cls in classes.items():
        obj = load_section(section, cls, REPO / "params.yaml")
        assert isinstance(obj, cls)


def test_every_params_key_in_dvc_yaml_exists_in_params_yaml() -> None:
    """dvc.yaml must list exact keys that exist, so DVC tracks the right ones."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    for name, stage in dvc["stages"].items():
        for key in stage.get("params", []):
            if isinstance(key, dict):  # a whole file (`- params.yaml:`), as the check stage tracks it
                assert list(key) == ["params.yaml"] and not key["params.yaml"], f"stage {name}: {key}"
                continue
            node = params
            for part in str(key).split("."):
                assert isinstance(node, dict) and part in node, f"stage {name}: `{key}` not in params.yaml"
                node = node[part]


def model_defaults(cls: type[BaseModel]) -> dict[str, Any]:
    """Every field's default, nested models as mappings (a required field maps to REQUIRED)."""
    out: dict[str, Any] = {}
    for name, field in cls.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out[name] = model_defaults(ann)
        elif field.is_required():
            out[name] = REQUIRED
        else:
            out[name] = field.get_default(call_default_factory=True)
    return out


def default_mismatches(section: str, shipped: Any, defaults: dict[str, Any]) -> list[str]:
    """One line per key where params.yaml and the model's default differ (or one side lacks the key)."""
    shipped = shipped or {}
    problems = []
    for key in sorted(set(shipped) | set(defaults)):
        dotted = f"{section}.{key}"
        if key not in defaults:
            problems.append(f"`{dotted}` is in params.yaml but not in the model")
        elif key not in shipped:
            problems.append(f"`{dotted}` (default {defaults[key]!r}) is missing from params.yaml")
        elif isinstance(defaults[key], dict) and isinstance(shipped[key], dict):
            problems += default_mismatches(dotted, shipped[key], defaults[key])
        elif shipped[key] != defaults[key] or isinstance(shipped[key], bool) != isinstance(
            defaults[key], bool
        ):
            problems.append(
                f"`{dotted}`: params.yaml says {shipped[key]!r}, the model's default is {defaults[key]!r}"
            )
    return problems


def test_shipped_params_equal_the_model_defaults() -> None:
    """The typed models are where defaults live; params.yaml ships exactly them (README, "Params")."""
    shipped = yaml.safe_load((REPO / "params.yaml").read_text())
    models = {**STAGE_MODELS, "retrain": RetrainParams, "serve": ServeParams, "monitor": MonitorParams}
    assert set(shipped) == set(models), "params.yaml's sections and the params classes differ"
    problems = [
        p for s, cls in models.items() for p in default_mismatches(s, shipped[s], model_defaults(cls))
    ]
    assert not problems, "params.yaml and the models disagree (change both):\n" + "\n".join(problems)


def test_default_mismatch_names_the_key() -> None:
    defaults = {"a": 1, "gate": {"b": 0.0}}
    assert default_mismatches("x", {"a": 1, "gate": {"b": 0.005}, "c": 2}, defaults) == [
        "`x.c` is in params.yaml but not in the model",
        "`x.gate.b`: params.yaml says 0.005, the model's default is 0.0",
    ]


def test_unknown_key_is_named_with_allowed_keys() -> None:
    with pytest.raises(ParamsError) as err:
        validate_section("clean", {"min_word": 5}, CleanParams)
    msg = str(err.value)
    assert "unknown key `clean.min_word`" in msg and "min_words" in msg and "no work was done" in msg


def test_wrong_type_and_out_of_range_name_key_and_value() -> None:
    with pytest.raises(ParamsError, match=r"`clean.min_words` = 'many'"):
        validate_section("clean", {"min_words": "many"}, CleanParams)
    with pytest.raises(ParamsError, match=r"`clean.max_reject_fraction` = 1.5 .*less than or equal to 1"):
        validate_section("clean", {"max_reject_fraction": 1.5}, CleanParams)
    with pytest.raises(ParamsError, match=r"`ingest.format` = 'xml'.*'csv'"):
        validate_section("ingest", {"format": "xml"}, IngestParams)


def test_missing_section_and_non_mapping(tmp_path: Path) -> None:
    f = tmp_path / "params.yaml"
    f.write_text("clean: {}\n")
    with pytest.raises(ParamsError, match="section `ingest` is missing"):
        load_section("ingest", IngestParams, f)
    f.write_text("ingest: [1, 2]\n")
    with pytest.raises(ParamsError, match="must be a mapping"):
        load_section("ingest", IngestParams, f)
