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
from typing import Any

from flows.predict_io import PredictError
from stages.config.params import load_section, read_params_file
from stages.config.register import RegisterParams
from stages.core.redact import mask_secrets, redact_uri
from stages.registry import tags as T

_NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")  # MLflow's codes for a wrong model URI


@dataclass
class Loaded:
    """A loaded version and what identifies it for a resume."""

    model: Any  # an mlflow PyFuncModel
    uri: str  # models:/NAME/VERSION
    files_sha256: str  # of the version's recorded manifest: every file of it
    takes_params: list[str]  # the inference params its signature declares


def register_params(params_path: str | Path = "params.yaml") -> RegisterParams:
    """The `register` section of the params file (the model name, the retry policy), else its defaults."""
    path = Path(params_path)
    if path.is_file() and "register" in read_params_file(path):
        return load_section("register", RegisterParams, path)
    return RegisterParams()


def default_model_uri(version: str | None = None, params_path: str | Path = "params.yaml") -> str:
    """`models:/NAME@champion` (NAME = register.model_name), or a given version number or alias."""
    name = register_params(params_path).model_name
    if version is None:
        return f"models:/{name}@{T.CHAMPION}"
    return f"models:/{name}/{version}" if str(version).isdigit() else f"models:/{name}@{version}"


def load_model(model_uri: str, params_path: str | Path = "params.yaml", quantize: str | None = None) -> Any:
    """The pyfunc model of `load_version` (the register and integrity tests load through here)."""
    return load_version(model_uri, params_path, quantize).model


def load_version(
    model_uri: str, params_path: str | Path = "params.yaml", quantize: str | None = None
) -> Loaded:
    """The version `model_uri` names, loaded from a copy whose every file matches its registered manifest,
    under the registry's retry and timeout policy; `quantize` (none | int8) overrides its own setting."""
    from mlflow.exceptions import MlflowException

    from stages.registry import tracking
    from stages.registry.integrity import load_verified
    from stages.serving.manifest import ManifestError

    uri = tracking.tracking_uri()
    policy = register_params(params_path).policy()
    try:
        mv = _resolve(model_uri, uri, policy)
        model = load_verified(mv, uri, policy, None if quantize is None else {"quantize": quantize})
    except ManifestError as exc:
        raise PredictError(str(exc)) from None
    except tracking.TrackingUnavailable as exc:
        raise PredictError(f"cannot load {model_uri}: {exc}") from None
    except MlflowException as exc:
        raise PredictError(
            f"cannot load {model_uri} from {redact_uri(uri)}: {mask_secrets(exc.message)}"
        ) from None
    signature = model.metadata.signature
    takes = [p.name for p in signature.params.params] if signature and signature.params else []
    files = hashlib.sha256(mv.tags.get(T.MANIFEST, "").encode()).hexdigest()
    return Loaded(model, f"models:/{mv.name}/{mv.version}", files, takes)


def _resolve(model_uri: str, uri: str, policy: Any) -> Any:
    """The ModelVersion `model_uri` names; a name, version or alias not there ends with what there is."""
    import re

    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from stages.registry.tracking import is_transient, use_store, with_retries

    found = re.fullmatch(r"models:/([^/@]+)(?:/(\d+)|@([^/]+))", model_uri)
    if found is None:
        raise PredictError(
            f"{model_uri}: only registered versions (`models:/NAME/VERSION` or `models:/NAME@ALIAS`) are "
            "loaded, since only they have a recorded manifest to check the files against; pass --version "
            "or a `models:/` URI."
        )
    name, version, alias = found.groups()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    use_store(uri)
    try:
        return with_retries(
            lambda: (
                client.get_model_version(name, version)
                if version
                else client.get_model_version_by_alias(name, alias)
            ),
            uri,
            policy,
            retry_if=is_transient,
        )
    except MlflowException as exc:
        if exc.error_code not in _NOT_FOUND:
            raise
        what = f"no version {version}" if version else f"no alias `{alias}`"
        raise PredictError(
            f"cannot load {model_uri} from {redact_uri(uri)}: {missing_message(client, name, what)}"
        ) from None


def missing_message(client: Any, name: str, what: str) -> str:
    """What model `name` has instead of `what` (a version or alias not there), and what to pass."""
    from mlflow.exceptions import MlflowException

    try:
        aliases = client.get_registered_model(name).aliases or {}
        versions = sorted(
            (int(v.version) for v in client.search_model_versions(f"name = '{name}'")), reverse=True
        )
    except MlflowException:
        return (
            f"there is no registered model `{name}` in this store. Register a model first "
            "(`dvc repro register` or `ftpipe run`), or pass --model-uri / --version."
        )
    if not versions:
        return f"model `{name}` has no versions. Register one first (`dvc repro register` or `ftpipe run`)."
    by_version: dict[str, list[str]] = {}
    for a, v in sorted(aliases.items()):
        by_version.setdefault(str(v), []).append(a)
    listed = ", ".join(
        f"version {v}" + (f" ({', '.join(by_version[str(v)])})" if str(v) in by_version else "")
        for v in versions[:10]
    )
    pick = f"--version {sorted(aliases)[0]}" if aliases else f"--version {versions[0]}"
    return (
        f"model `{name}` has {what}; it has {listed}{' and more' if len(versions) > 10 else ''}. Pass {pick} "
        f"(or another), or set the alias: `ftpipe promote VERSION --reason ...`."
    )
