"""predict's model: which registered version a URI names, and that version loaded once its files check out.

    uri = default_model_uri(None, "params.yaml")           # models:/<register.model_name>@champion
    loaded = load_model(uri, "params.yaml", quantize=None)  # .model, .version, .files_sha256

MLflow is found the way the register stage finds it (`MLFLOW_TRACKING_URI`, else `mlflow.db` at the
repository root), under the registry's one retry and timeout policy (`register.retries`, `backoff_s`,
`timeout_s`). An alias or version that is not there is answered with the versions and aliases there are.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from flows.commands.predict.inputs import InputError, PredictError
from stages.config.params import load_section, read_params_file
from stages.config.register import RegisterParams
from stages.core.redact import mask_secrets, redact_uri
from stages.registry import tags as registry_tags

if TYPE_CHECKING:  # imported where used: it imports MLflow, which `ftpipe --help` does not pay for
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.pyfunc import PyFuncModel

    from flows.commands.predict.lengths import TrainedLengths
    from stages.config.register import RetryPolicy
    from stages.registry.client import Registry


@dataclass
class Loaded:
    """A loaded version and what identifies it for a resume."""

    model: PyFuncModel
    uri: str  # models:/NAME/VERSION
    files_sha256: str  # of the version's recorded manifest: every file of it
    takes_params: list[str]  # the inference params its signature declares
    lengths: TrainedLengths | None = None  # how short a text it trained on, where it records it


def register_params(params_path: str | Path = "params.yaml") -> RegisterParams:
    """The `register` section of the params file (the model name, the retry policy), else its defaults."""
    path = Path(params_path)
    if path.is_file() and "register" in read_params_file(path):
        return load_section("register", RegisterParams, path)
    return RegisterParams()


def default_model_uri(version: str | None = None, params_path: str | Path = "params.yaml") -> str:
    """`models:/NAME@champion` (NAME = register.model_name), or a given alias, or a version number in
    any form promote and fetch read (`canonical_version`: "01", " 1", "+1", "1.0" are version 1)."""
    from stages.registry.history import ALIAS_NAME, canonical_version
    from stages.registry.tracking import RegistryError

    name = register_params(params_path).model_name
    if version is None:
        return f"models:/{name}@{registry_tags.CHAMPION}"
    if ALIAS_NAME.fullmatch(version.strip()):
        return f"models:/{name}@{version.strip()}"
    try:
        return f"models:/{name}/{canonical_version(version)}"
    except RegistryError as exc:  # as promote and fetch refuse it
        raise InputError(str(exc)) from None


def load_model(
    model_uri: str, params_path: str | Path = "params.yaml", quantize: str | None = None
) -> PyFuncModel:
    """The pyfunc model of `load_version` (the register and integrity tests load through here)."""
    return load_version(model_uri, params_path, quantize).model


def load_version(
    model_uri: str, params_path: str | Path = "params.yaml", quantize: str | None = None
) -> Loaded:
    """The version `model_uri` names, loaded from a copy whose every file matches its registered manifest,
    under the registry's retry and timeout policy; `quantize` (none | int8) overrides its own setting."""
    from mlflow.exceptions import MlflowException

    from flows.commands.predict.lengths import trained_lengths
    from stages.core.io import DiskFull
    from stages.registry import tracking
    from stages.registry.integrity import load_verified
    from stages.serving.manifest import ManifestError

    uri = tracking.tracking_uri()
    policy = register_params(params_path).policy()
    try:
        reg, mv = _resolve(model_uri, uri, policy)
        model = load_verified(mv, uri, policy, None if quantize is None else {"quantize": quantize})
    except (ManifestError, DiskFull) as exc:  # DiskFull: no room for the copy it loads from
        raise PredictError(str(exc)) from None
    except tracking.TrackingUnavailable as exc:
        raise PredictError(f"cannot load {model_uri}: {exc}") from None
    except MlflowException as exc:
        raise PredictError(
            f"cannot load {model_uri} from {redact_uri(uri)}: {mask_secrets(exc.message)}"
        ) from None
    signature = model.metadata.signature
    takes = [p.name for p in signature.params.params] if signature and signature.params else []
    files = hashlib.sha256(mv.tags.get(registry_tags.MANIFEST, "").encode()).hexdigest()
    return Loaded(model, f"models:/{mv.name}/{mv.version}", files, takes, trained_lengths(reg, mv))


def _resolve(model_uri: str, uri: str, policy: RetryPolicy) -> tuple[Registry, ModelVersion]:
    """The registry and the ModelVersion `model_uri` names, its version read as `canonical_version` reads
    it and its alias through `Registry.resolve`: what is not there ends with the message `ftpipe fetch`
    gives."""
    import re

    from stages.registry.client import Registry
    from stages.registry.tracking import RegistryError

    found = re.fullmatch(r"models:/([^/@]+)(?:/([^/@]+)|@([^/]+))", model_uri)
    if found is None:
        raise PredictError(
            f"{model_uri}: only registered versions (`models:/NAME/VERSION` or `models:/NAME@ALIAS`) are "
            "loaded, since only they have a recorded manifest to check the files against; pass --version "
            "or a `models:/` URI."
        )
    name, version, alias = found.groups()
    try:
        reg = Registry.connect(uri, name, policy)
        return reg, reg.version(reg.resolve(alias) if alias else version)
    except RegistryError as exc:
        raise PredictError(f"cannot load {model_uri} from {redact_uri(uri)}: {exc}") from None
