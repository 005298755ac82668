"""Following a registry alias: fetch, verify, load and smoke-test a candidate beside the served version,
then swap; refuse a candidate that fails any step, in one paragraph.

    follower = Follower(RegistrySource(uri, name, "champion", policy, tolerance=0.01), poll_seconds=30)
    follower.start()                  # polls now, then every poll_seconds, in a thread of its own
    served = follower.current         # a request takes this once and finishes on it, whatever swaps meanwhile

The swap is one assignment of `current`: a request holds the `Served` it started with, so it ends on that
version, and the old model is freed when the last such request is done. A candidate is tried once per
move of the alias: one that is refused is tried again only when the alias moves again (to it or another).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Protocol

import mlflow.pyfunc
import pandas as pd
from mlflow.exceptions import MlflowException

from stages.config.register import RetryPolicy
from stages.core.io import DiskFull
from stages.core.notify import notify
from stages.core.redact import mask_secrets, redact_uri
from stages.registry import tags as registry_tags
from stages.registry.integrity import download_verified
from stages.registry.reader import RegistryReader
from stages.registry.smoke import FALLBACK_TEXTS, sanity
from stages.registry.tracking import RegistryError, TrackingUnavailable, describe_failure, use_store
from stages.serving.manifest import ManifestError
from stages.serving.textclf import MULTI_LABEL, TextCounts, WindowEncoder

LOG = logging.getLogger("ftpipe.serve")
# every forward pass of the server on one thread (requests and smoke tests alike): torch's OpenMP keeps a
# team of threads per calling thread, and requests spread over a pool's threads left idle teams competing
# for the cores (a one-text MiniLM forward pass 16 ms on one thread, 21 ms over a pool of 8; 2026-12-07,
# 2-vCPU Intel Xeon with avx512_bf16)
PREDICTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ftpipe-predict")
KEEP_REFUSALS = 20  # the latest refusals shown on /version


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def one_paragraph(text: str) -> str:
    return mask_secrets(" ".join(text.split()))


@dataclass(frozen=True)
class Served:
    """A loaded, verified and smoke-tested version, and what identifies it on /version."""

    name: str
    version: str
    run_id: str | None
    weights_hash: str | None  # the version's `ftpipe.model_hash` (the model folder's hash)
    files_sha256: str | None  # of its `ftpipe.manifest` tag: every file checked before the load
    model: Any  # an mlflow PyFuncModel
    takes_probabilities: bool
    loaded_at: str = ""
    load_seconds: float = 0.0
    smoke: str = ""  # what the smoke test found
    computes_in: str = ""  # bf16 | fp32 | int8: what serve.precision and serve.quantize resolved to here
    multi_label: bool = False  # answers a label set per text (label.task multi_label): `labels` in the answer
    counter: Callable[[list[str]], list[TextCounts]] | None = field(default=None, compare=False, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    def predict(self, texts: list[str]) -> pd.DataFrame:
        """label, score and, where the version serves them, a p_<label> column per class; one prediction
        at a time per model (torch uses every core within it)."""
        params = {"probabilities": True} if self.takes_probabilities else None
        with self.lock:
            out: pd.DataFrame = self.model.predict(pd.DataFrame({"text": texts}), params=params)
        return out

    def counts(self, texts: list[str]) -> list[TextCounts] | None:
        """Each text's tokens, unknown tokens and windows as this version reads them (the request log's
        figures); None where the version is not ftpipe's text classifier or counting failed."""
        if self.counter is None:
            return None
        try:  # outside the model's lock: the encoder's tokenizer is never changed after its set-up
            return self.counter(texts)
        except Exception:  # noqa: BLE001 - the request is answered regardless; its log rows carry nulls
            LOG.exception("request log: the texts of a request could not be counted")
            return None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "weights_hash": self.weights_hash,
            "files_sha256": self.files_sha256,
            "loaded_at": self.loaded_at,
            "load_seconds": self.load_seconds,
            "smoke_test": self.smoke,
            "computes_in": self.computes_in,
        }


class Refused(Exception):
    """A candidate that may not be served: the step that failed (verification, loading, smoke test) and why."""

    def __init__(self, step: str, cause: str) -> None:
        super().__init__(f"{step}: {cause}")
        self.step, self.cause = step, cause


@dataclass(frozen=True)
class Refusal:
    version: str
    step: str
    at: str
    paragraph: str


class Source(Protocol):
    """Where candidates come from: the registry (`RegistrySource`), or a test's stand-in."""

    name: str
    alias: str

    def target(self) -> str | None:
        """The version the alias points at now, or None."""
        ...

    def candidate(self, version: str) -> Served:
        """`version` fetched, verified, loaded and smoke-tested; Refused otherwise."""
        ...


class RegistrySource:
    """Candidates from the MLflow registry, checked as `ftpipe fetch` checks them before they load."""

    def __init__(
        self,
        uri: str,
        name: str,
        alias: str,
        policy: RetryPolicy,
        tolerance: float,
        model_config: dict[str, str] | None = None,
    ) -> None:
        self.uri, self.name, self.alias, self.policy, self.tolerance = uri, name, alias, policy, tolerance
        self.model_config = dict(model_config or {})  # merged over the version's own (precision, quantize)
        self.reader = RegistryReader.connect(uri, name, policy)
        use_store(uri)  # `models:/` downloads read the process-wide store

    def target(self) -> str | None:
        return self.reader.alias(self.alias)

    def candidate(self, version: str) -> Served:
        t0 = time.perf_counter()
        try:
            mv = self.reader.version(version)
        except (RegistryError, TrackingUnavailable) as exc:
            raise Refused("lookup", str(exc)) from None
        with tempfile.TemporaryDirectory(prefix="ftpipe-serve-") as tmp:
            try:  # every file against the manifest recorded at registration, before anything of it runs
                local = download_verified(mv, self.uri, tmp, self.policy)
            except ManifestError as exc:
                raise Refused("verification", str(exc)) from None
            except (DiskFull, TrackingUnavailable) as exc:
                raise Refused("download", str(exc)) from None
            except Exception as exc:  # noqa: BLE001 - the store's own errors, said in one line
                raise Refused("download", describe_failure(exc)) from None
            try:
                model = mlflow.pyfunc.load_model(local, model_config=self.model_config or None)
            except Exception as exc:  # noqa: BLE001 - whatever the model's load raises is a refusal
                raise Refused("loading", describe_failure(exc)) from None
        signature = model.metadata.signature
        takes = bool(
            signature and signature.params and any(p.name == "probabilities" for p in signature.params.params)
        )
        tags = mv.tags
        manifest_tag = tags.get(registry_tags.MANIFEST)
        served = Served(
            self.name,
            str(mv.version),
            mv.run_id,
            tags.get(registry_tags.MODEL_HASH),
            None if manifest_tag is None else _sha256(manifest_tag),
            model,
            takes,
        )
        smoke = self.smoke(served, tags)
        return replace(
            served,
            smoke=smoke,
            loaded_at=now_iso(),
            load_seconds=round(time.perf_counter() - t0, 2),
            computes_in=_computes_in(model),
            counter=text_counter(model),
            multi_label=answers_label_sets(model),
        )

    def smoke(self, served: Served, tags: dict[str, str]) -> str:
        """Reproduce what the version recorded at registration (stages/registry/smoke.py); its summary."""
        try:
            record = self.reader.smoke_record(served.version)
        except (ValueError, RegistryError, TrackingUnavailable) as exc:
            raise Refused("smoke test", str(exc)) from None
        try:
            if record is None:
                texts = list(FALLBACK_TEXTS)
                labels = tags.get(registry_tags.LABELS)
                why = sanity(
                    PREDICTOR.submit(served.predict, texts).result(),
                    len(texts),
                    json.loads(labels) if labels else None,
                    self.tolerance,
                )
                done = (
                    f"no smoke record (registered before ftpipe kept one): its {len(texts)} fixed texts gave "
                    "labels of its own with probabilities summing to 1"
                )
            else:
                out = PREDICTOR.submit(served.predict, record.texts).result()
                why = record.mismatch(out, self.tolerance)
                done = (
                    (
                        f"reproduced its {len(record.texts)} recorded rows within {self.tolerance:g} "
                        f"(largest difference {record.max_difference(out):.2g})"
                    )
                    if why is None
                    else ""
                )
        except (MlflowException, ValueError, KeyError, RuntimeError) as exc:
            raise Refused("smoke test", describe_failure(exc)) from None
        if why is not None:
            raise Refused("smoke test", why)
        return done

    def where(self) -> str:
        return redact_uri(self.uri)


def _computes_in(model: Any) -> str:
    """bf16, fp32 or int8: how the loaded pyfunc runs its forward pass on this machine ("" for a pyfunc
    that is not ftpipe's text classifier)."""
    try:
        inner = model.unwrap_python_model()
    except Exception:  # noqa: BLE001 - a model of another flavour: nothing to say
        return ""
    config = getattr(inner, "config", {}) or {}
    if config.get("quantize") == "int8":
        return "int8"
    return "bf16" if getattr(inner, "autocast_bf16", False) else "fp32"


def answers_label_sets(model: Any) -> bool:
    """Whether the loaded pyfunc is ftpipe's text classifier of a multi-label model (its config's
    problem_type MULTI_LABEL): its `label` is a "|"-joined set; False for any other."""
    try:
        return bool(model.unwrap_python_model().model.config.problem_type == MULTI_LABEL)
    except Exception:  # noqa: BLE001 - a model of another flavour or shape: one label per text
        return False


def text_counter(model: Any) -> Callable[[list[str]], list[TextCounts]] | None:
    """How the loaded pyfunc reads texts, for the request log: its own tokenizer and windowing policy
    (`model_config`: max_length, windows, truncation) through ftpipe's one encoder (`WindowEncoder`, the
    tokenize stage's and the served model's), so a served text is counted as its training data was.
    None for a pyfunc that is not ftpipe's text classifier (its log rows then carry nulls)."""
    try:
        inner = model.unwrap_python_model()
        # the version's own encoder where its registered code keeps one that counts, else one alike
        own: Any = getattr(inner, "encoder", None)
        enc = own if hasattr(own, "counts") else WindowEncoder.from_config(inner.tokenizer, inner.config)
        unk = inner.tokenizer.unk_token_id
    except Exception:  # noqa: BLE001 - a model of another flavour or shape: nothing to count with
        return None

    def count(texts: list[str]) -> list[TextCounts]:
        return enc.counts(texts, unk)

    return count


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Follower:
    """The version in service and the thread that moves it when the alias moves."""

    def __init__(self, source: Source, poll_seconds: float) -> None:
        self.source, self.poll_seconds = source, poll_seconds
        self.current: Served | None = None
        self.refused: list[Refusal] = []
        self.attempted: str | None = None  # the alias's target last tried: tried again only after a move
        self.target: str | None = None
        self.polled_at: str | None = None
        self.poll_error: str | None = None
        self.swaps = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ftpipe-serve-follow", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)  # a load in progress is abandoned with the process

    def _run(self) -> None:
        while True:
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - the follower outlives any one poll
                LOG.exception("polling @%s failed; the served version is unchanged", self.source.alias)
            if self._stop.wait(self.poll_seconds):
                return

    def poll_once(self) -> None:
        """Ask where the alias points; when it moved, try the version it points at now."""
        try:
            target = self.source.target()
        except Exception as exc:  # noqa: BLE001 - the registry is away: keep serving, say so
            why = describe_failure(exc)
            if why != self.poll_error:
                LOG.warning("registry not reachable (%s); serving %s meanwhile", why, self._serving())
            self.poll_error = why
            return
        self.poll_error, self.polled_at, self.target = None, now_iso(), target
        if target is None:
            if self.attempted is not None or self.current is None:
                LOG.warning(
                    "@%s of %s points at no version; %s", self.source.alias, self.source.name, self._serving()
                )
            self.attempted = None
            return
        if target == self.attempted:
            return
        self.attempted = target
        if self.current is not None and self.current.version == target:
            return
        self.try_version(target)

    def try_version(self, version: str) -> None:
        """Load `version` beside the served one and swap, or refuse it (the old keeps serving)."""
        old = self.current
        LOG.info(
            "@%s moved to version %s: fetching, verifying, loading, smoke-testing", self.source.alias, version
        )
        try:
            try:
                cand = self.source.candidate(version)
            except Refused:
                raise
            except Exception as exc:  # noqa: BLE001 - whatever else goes wrong is a refusal, never a crash
                raise Refused("loading", describe_failure(exc)) from None
        except Refused as exc:
            keeps = f"version {old.version} keeps serving" if old else "no version is served until it moves"
            paragraph = one_paragraph(
                f"Refused {self.source.name} version {version} (@{self.source.alias} points at it): its "
                f"{exc.step} failed: {exc.cause.rstrip('.')}. {keeps[0].upper()}{keeps[1:]}; the server tries "
                f"again when @{self.source.alias} moves again."
            )
            self.refused = [*self.refused, Refusal(version, exc.step, now_iso(), paragraph)][-KEEP_REFUSALS:]
            LOG.error("%s", paragraph)
            notify(f"ftpipe serve: refused {self.source.name} version {version}", paragraph, "/version")
            return
        self.current = cand  # the swap: one assignment; requests in flight keep the Served they took
        self.swaps += 1
        LOG.info(
            "serving %s version %s (was %s), loaded in %.1f s; smoke test: %s",
            cand.name,
            cand.version,
            old.version if old else "none",
            cand.load_seconds,
            cand.smoke,
        )
        notify(
            f"ftpipe serve: serving {cand.name} version {cand.version}",
            f"Swapped in version {cand.version} (was {old.version if old else 'none'}); smoke test: {cand.smoke}.",
            "/version",
        )

    def _serving(self) -> str:
        return f"version {self.current.version} keeps serving" if self.current else "no version is served"

    def status(self) -> dict[str, Any]:
        """What /version shows: the served version, the alias's target, and the refused candidates."""
        served = self.current.describe() if self.current else {"name": self.source.name, "version": None}
        return {
            **served,
            "alias": self.source.alias,
            "alias_target": self.target,
            "polled_at": self.polled_at,
            "poll_error": self.poll_error,
            "poll_seconds": self.poll_seconds,
            "swaps": self.swaps,
            "refused": [r.__dict__ for r in self.refused],
        }
