"""The HTTP side of `ftpipe serve`: `/invocations` as `mlflow models serve` answers it, `/health`, `/ready`,
`/version`, each bounded, each answer naming the version that gave it.

    app = build_app(follower, ServeParams(), RequestLog(...))    # uvicorn.run(app, ...)

`/invocations` takes the version in service once (`follower.current`) and answers on it, so a swap during the
request changes nothing for it. Bounds: a body over `serve.max_request_bytes` is 413; more than
`serve.max_rows` texts, or a bad one, is 400 with one line naming the row and the fix; beyond
`serve.max_in_flight` requests at once, 503 with Retry-After (never an unbounded queue). Every answer of
/invocations while a version is served carries `X-Model-Version` and, on success, `"version"` in the body.

A multi-label version (label.task multi_label) answers each row with `label` (the set, "billing|bug"),
`labels` (the same set as a JSON list), `score` (the chosen labels' mean probability) and a `p_<label>` per
label, asked or not; its request-log rows hold the set string as the label.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from mlflow.exceptions import MlflowException

from flows.commands.serve.follower import LOG, PREDICTOR, Follower, Served
from flows.commands.serve.payload import BadRequest, Parsed, parse
from flows.commands.serve.reqlog import RequestLog
from stages.config.serve import ServeParams
from stages.core.label_sets import split_set
from stages.registry.smoke import PROB_PREFIX, probability_columns
from stages.registry.tracking import describe_failure
from stages.serving.textclf import TextCounts

VERSION_HEADER = "X-Model-Version"


async def on_predictor(fn: Callable[[list[str]], Any], texts: list[str]) -> Any:
    """`fn(texts)` on the one prediction thread, awaited."""
    return await asyncio.get_running_loop().run_in_executor(PREDICTOR, fn, texts)


class _TooLarge(Exception):
    pass


def _error(
    status: int, code: str, message: str, served: Served | None, retry_after: int | None = None
) -> Response:
    headers = {} if served is None else {VERSION_HEADER: served.version}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse({"error_code": code, "message": message}, status_code=status, headers=headers)


async def _body(request: Request, limit: int) -> bytes:
    """The request body, read no further than `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def build_app(follower: Follower, params: ServeParams, log: RequestLog) -> FastAPI:
    """The server's app; its lifespan starts and stops the follower and the request log's writer."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.start()
        follower.start()
        try:
            yield
        finally:  # after uvicorn drained the requests in flight (SIGTERM)
            follower.stop()
            log.close()

    app = FastAPI(title="ftpipe serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    in_flight = [0]  # changed on the event loop only: no lock needed

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/ready")
    def ready() -> Response:
        served = follower.current
        if served is None:
            return JSONResponse(
                {"ready": False, "reason": "no verified version is loaded yet (see /version)"},
                status_code=503,
            )
        return JSONResponse(
            {"ready": True, "version": served.version}, headers={VERSION_HEADER: served.version}
        )

    @app.get("/version")
    def version() -> Response:
        served = follower.current
        body = {**follower.status(), "request_log": {"dir": str(log.folder), **log.counts()}}
        return JSONResponse(body, headers={} if served is None else {VERSION_HEADER: served.version})

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        if in_flight[0] >= params.max_in_flight:
            return _error(
                503,
                "TEMPORARILY_UNAVAILABLE",
                f"{in_flight[0]} requests are being answered (serve.max_in_flight = {params.max_in_flight}); "
                f"retry after {params.retry_after_s} s",
                follower.current,
                params.retry_after_s,
            )
        in_flight[0] += 1
        try:
            # the version this request is answered by, whatever swaps meanwhile
            return await answer(request, follower.current, params, log)
        finally:
            in_flight[0] -= 1

    return app


async def answer(request: Request, served: Served | None, params: ServeParams, log: RequestLog) -> Response:
    """One /invocations request answered by `served`: read within the bounds, predicted, logged."""
    if served is None:
        return _error(
            503,
            "TEMPORARILY_UNAVAILABLE",
            "no verified version is loaded yet; /version says why",
            None,
            params.retry_after_s,
        )
    parsed = await _read(request, served, params)
    if isinstance(parsed, Response):
        return parsed
    if not parsed.texts:
        return _answer(served, [])
    try:
        out = await on_predictor(served.predict, parsed.texts)
    except MlflowException as exc:  # textclf refuses a text it cannot classify: the client's to fix
        if exc.error_code == "INVALID_PARAMETER_VALUE":
            return _error(400, "BAD_REQUEST", " ".join(exc.message.split()), served)
        return _error(500, "INTERNAL_ERROR", describe_failure(exc), served)
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback to the client
        return _error(500, "INTERNAL_ERROR", describe_failure(exc), served)
    records = out.to_dict("records")
    cols = probability_columns(out)
    counts = await on_predictor(served.counts, parsed.texts)  # never raises: None on failure
    _log_rows(log, served, parsed.texts, records, cols, counts)
    if served.multi_label:  # the set as a list too, and every label's probability: that model's answer
        return _answer(served, [_label_set(r, cols) for r in records])
    keep = ["label", "score", *(cols if parsed.probabilities else [])]
    return _answer(served, [{k: r[k] for k in keep} for r in records])


def _label_set(record: dict[str, Any], cols: list[str]) -> dict[str, Any]:
    """One answer row of a multi-label version: `label` ("billing|bug"), `labels` (["billing", "bug"]),
    `score` (their mean probability) and a `p_<label>` per label."""
    label = str(record["label"])
    return {"label": label, "labels": split_set(label), "score": record["score"]} | {
        c: record[c] for c in cols
    }


async def _read(request: Request, served: Served, params: ServeParams) -> Parsed | Response:
    """The request's texts, or the 413 / 400 answer that says why there are none."""
    try:
        body = await _body(request, params.max_request_bytes)
        parsed = parse(body, request.headers.get("content-type", ""), params.max_rows)
    except _TooLarge:
        return _error(
            413,
            "REQUEST_LIMIT_EXCEEDED",
            f"the body is over serve.max_request_bytes = {params.max_request_bytes}; send fewer or shorter texts",
            served,
        )
    except BadRequest as exc:
        return _error(400, "BAD_REQUEST", str(exc), served)
    if parsed.probabilities and not served.takes_probabilities:
        return _error(
            400,
            "BAD_REQUEST",
            f"version {served.version} was registered before ftpipe's served model gave class probabilities; "
            "drop params.probabilities",
            served,
        )
    return parsed


def _answer(served: Served, predictions: list[dict[str, Any]]) -> Response:
    return JSONResponse(
        {"predictions": predictions, "name": served.name, "version": served.version},
        headers={VERSION_HEADER: served.version},
    )


def _log_rows(
    log: RequestLog,
    served: Served,
    texts: list[str],
    records: list[dict[str, Any]],
    cols: list[str],
    counts: list[TextCounts] | None,
) -> None:
    """One request-log row per answered text; never raises (the log never fails a request)."""
    try:
        when, request_id = datetime.now(timezone.utc), uuid.uuid4().hex
        read = counts if counts is not None and len(counts) == len(texts) else [None] * len(texts)
        log.add(
            [
                {
                    "time": when,
                    "request_id": request_id,
                    "row": i,
                    "version": served.version,
                    "label": str(r["label"]),
                    "score": float(r["score"]),
                    "probabilities": [(c[len(PROB_PREFIX) :], float(r[c])) for c in cols],
                    "tokens": None if n is None else n.tokens,
                    "unknown_tokens": None if n is None else n.unknown,
                    "windows": None if n is None else n.windows,
                    "truncated": None if n is None else n.truncated,
                    "text": text,
                }
                for i, (text, r, n) in enumerate(zip(texts, records, read, strict=True))
            ]
        )
    except Exception:  # noqa: BLE001 - said in the server's log; the answer goes out regardless
        LOG.exception("request log: the rows of a request could not be made")
