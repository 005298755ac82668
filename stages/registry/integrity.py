"""Integrity of a registered version's files: what is recorded at registration, and checked before a load.

    local = download_verified(mv, uri, dest)        # every file checked against the `ftpipe.manifest` tag
    model = load_uri_verified("models:/m@champion", uri, policy)   # nothing runs before the check

The register stage records the sha256 of every file of the logged model (`check_logged`, read back from
the artifact store) as the version's `ftpipe.manifest` tag; the served model carries the manifest of
its folder and of ftpipe's code registered with it (`served_manifest`) and checks it at load. A version
without a manifest, or with a changed, added or missing file, is refused naming the file and both hashes.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import mlflow.artifacts
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from stages.config.register import RetryPolicy
from stages.core.io import DISK_FULL_ERRNOS, DiskFull, as_disk_full
from stages.core.redact import redact_uri
from stages.registry import tags as registry_tags
from stages.registry.tracking import is_transient, use_store, with_retries
from stages.serving import manifest, textclf

if TYPE_CHECKING:  # mlflow.pyfunc is imported by MLflow when a model is loaded
    from mlflow.pyfunc import PyFuncModel

# written by MLflow into every download of a registered model (its name and version): data, not code
DOWNLOAD_ONLY = ("registered_model_meta",)
UNVERIFIED_FIX = (
    "Promote a version registered with a manifest (`ftpipe history`, `ftpipe promote VERSION --reason ...`) "
    "or register the model folder again with this version of ftpipe."
)


def registered_code() -> list[Path]:
    """ftpipe's modules shipped with the served model (MLflow `code_paths`); textclf.py loads them by path."""
    from stages.serving import meanpool  # shipped, not run here (importing it costs torch at CLI start)

    files = [Path(manifest.__file__), Path(meanpool.__file__)]
    assert sorted(f.name for f in files) == sorted(textclf.REGISTERED_CODE)
    return files


def served_manifest(model_dir: Path) -> dict[str, dict[str, str]]:
    """What the served model checks itself against at load (stored in its model_config): every file of
    the model folder and ftpipe's code registered with it."""
    return {
        textclf.HF_ARTIFACT: manifest.tree_manifest(model_dir),
        "code": {f.name: manifest.file_sha256(f) for f in registered_code()},
    }


def downloaded_manifest(model_uri: str) -> dict[str, str]:
    """The manifest of every file of the model at `model_uri`, as the store gives it back."""
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(model_uri, dst_path=tmp)
        return manifest.tree_manifest(local, ignore=DOWNLOAD_ONLY)


def check_logged(
    found: dict[str, str], served: dict[str, dict[str, str]], folder_name: str, model_uri: str
) -> dict[str, str]:
    """`found` (every file of the logged model: MLmodel, environment files, textclf.py, code/, artifacts/)
    once the folder and the code are seen to have arrived unchanged. Recorded as the version's
    `ftpipe.manifest` tag, against which every load is checked."""
    fix = "The artifact store changed the files while they were logged; register again."
    manifest.check(
        served[textclf.HF_ARTIFACT], manifest.under(found, f"artifacts/{folder_name}"), model_uri, fix
    )
    manifest.check(served["code"], manifest.under(found, "code"), model_uri, fix)
    manifest.check(
        {"textclf.py": manifest.file_sha256(textclf.__file__)},
        {"textclf.py": found.get("textclf.py", "")},
        model_uri,
        fix,
    )
    return found


def download_verified(
    mv: ModelVersion, uri: str, dst: str | Path, policy: RetryPolicy = RetryPolicy()
) -> str:
    """Download version `mv` into `dst` and check every file against its `ftpipe.manifest` tag; the
    local path of the checked copy. A version without the tag (registered before ftpipe kept one) is
    refused."""
    what = f"model `{mv.name}` version {mv.version} (from {redact_uri(uri)})"
    if registry_tags.MANIFEST not in mv.tags:
        raise manifest.ManifestError(
            f"{what} has no `{registry_tags.MANIFEST}` tag: it was registered before ftpipe recorded a "
            f"manifest of its files, so they cannot be checked and it is not loaded. {UNVERIFIED_FIX}"
        )
    expected = manifest.loads(mv.tags[registry_tags.MANIFEST], f"{what}, tag {registry_tags.MANIFEST}")
    model_uri = f"models:/{mv.name}/{mv.version}"

    def download() -> str:
        try:
            return str(mlflow.artifacts.download_artifacts(model_uri, dst_path=str(dst)))
        except Exception as exc:
            full = disk_full_in(exc, dst)
            if full is None:
                raise
            raise DiskFull(dst, full, artifact_bytes(model_uri)) from None

    local = with_retries(  # the network part, under the policy; the check and the load are not retried
        download, uri, policy, retry_if=lambda exc: not isinstance(exc, DiskFull) and is_transient(exc)
    )
    manifest.check(
        expected,
        manifest.tree_manifest(local, ignore=DOWNLOAD_ONLY),
        what,
        "Do not use this version: find who can write to the artifact store and restore its files, or "
        f"move the aliases to another version. {UNVERIFIED_FIX}",
    )
    return local


def disk_full_in(exc: BaseException, dst: str | Path) -> DiskFull | None:
    """`exc` as a DiskFull naming `dst` when a file ran out of space (ENOSPC/EDQUOT), else None. MLflow's
    downloader gathers each file's error into one MlflowException's text (`[Errno 28] No space left on
    device`), so that text is read too."""
    full = as_disk_full(exc, dst)
    if full is None and isinstance(exc, MlflowException):
        codes = {int(n) for n in re.findall(r"\[Errno (\d+)\]", exc.message)} & DISK_FULL_ERRNOS
        if codes:
            code = min(codes)
            full = DiskFull(dst, OSError(code, os.strerror(code)))
    return full


def artifact_bytes(artifact_uri: str) -> int | None:
    """The size of every file under `artifact_uri` (what a download of it needs), or None when the store
    cannot list them."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    try:
        repo = get_artifact_repository(artifact_uri)
        total, folders = 0, list[str | None]([None])
        while folders:
            for info in repo.list_artifacts(folders.pop()):
                if info.is_dir:
                    folders.append(info.path)
                else:
                    total += info.file_size or 0
        return total
    except Exception:  # only for a message: the download's own error is what is raised
        return None


def load_verified(
    mv: ModelVersion,
    uri: str,
    policy: RetryPolicy = RetryPolicy(),
    model_config: dict[str, Any] | None = None,
) -> PyFuncModel:
    """Version `mv`, loaded from a copy whose files all match its manifest (`download_verified`).

    Nothing of the model runs before the check (MLflow runs textclf.py at load), and the checked copy is
    the one loaded. `model_config` overrides keys of the logged model_config (MLflow merges them), e.g.
    `{"quantize": "int8"}`; the manifest it records cannot be overridden.
    """
    if model_config and "manifest" in model_config:
        raise ValueError("model_config may not override `manifest`: it is what the files are checked against")
    with tempfile.TemporaryDirectory() as tmp:
        model: PyFuncModel = mlflow.pyfunc.load_model(
            download_verified(mv, uri, tmp, policy), model_config=model_config
        )
        return model


def load_uri_verified(
    model_uri: str, uri: str, policy: RetryPolicy = RetryPolicy(), model_config: dict[str, Any] | None = None
) -> PyFuncModel:
    """`load_verified` for `models:/NAME/VERSION` or `models:/NAME@ALIAS` (other URIs have no record to
    check against and are refused); an unknown name, version or alias raises MLflow's own error."""
    found = re.fullmatch(r"models:/([^/@]+)(?:/(\d+)|@([^/]+))", model_uri)
    if found is None:
        raise manifest.ManifestError(
            f"{model_uri}: only registered versions (`models:/NAME/VERSION` or `models:/NAME@ALIAS`) are "
            "loaded, since only they have a recorded manifest to check the files against. Register the "
            "model (the register stage) and pass its version or alias."
        )
    name, version, alias = found.groups()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    mv = with_retries(
        lambda: (
            client.get_model_version(name, version)
            if version
            else client.get_model_version_by_alias(name, alias)
        ),
        uri,
        policy,
        retry_if=is_transient,
    )
    use_store(uri)
    return load_verified(mv, uri, policy, model_config)
