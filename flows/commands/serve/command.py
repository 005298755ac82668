"""serve: one resident HTTP server for the registered model that follows an alias; a plain command.

    ftpipe serve                                  # models:/<register.model_name>@champion on 127.0.0.1:8080
    ftpipe serve --alias challenger --port 8081
    ftpipe serve --host 0.0.0.0 --workers 4       # four processes behind one port (docs/serving.md)
    curl -s 127.0.0.1:8080/invocations -H 'Content-Type: application/json' \\
         -d '{"dataframe_records": [{"text": "The striker scored twice."}], "params": {"probabilities": true}}'

It answers `/invocations` as `mlflow models serve` does (clients do not change), with the version that
answered in the `X-Model-Version` header and the body; `/health`, `/ready` and `/version` say how it is.
Every `serve.poll_seconds` it asks the registry where the alias points; when it moved, the version there is
fetched, every file checked against its registered manifest (as `ftpipe fetch` does), loaded beside the
served one and smoke-tested against the predictions it recorded at registration, and only then swapped in
(flows/commands/serve/follower.py). The `serve` section of params.yaml holds the bounds and the request
log (docs/params.md). SIGTERM (or Ctrl-C) lets the requests in flight finish, writes the log, exits 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from flows.commands.predict.model import register_params
from stages.config.params import ParamsError, load_section, read_params_file
from stages.config.serve import ServeParams
from stages.core.redact import redact_uri

if (
    TYPE_CHECKING
):  # the server's stack (FastAPI, MLflow, torch) is imported when it starts: `--help` stays fast
    from fastapi import FastAPI

ARGS_ENV = "FTPIPE_SERVE_ARGS"  # what each worker of `--workers N` reads to build its app (`create_app`)
LOG = logging.getLogger("ftpipe.serve")


def serve_params(params_path: str | Path, **overrides: Any) -> ServeParams:
    """The `serve` section of the params file (its defaults where there is none), with `overrides` set."""
    path = Path(params_path)
    params = (
        load_section("serve", ServeParams, path)
        if path.is_file() and "serve" in read_params_file(path)
        else ServeParams()
    )
    given = {k: v for k, v in overrides.items() if v is not None}
    return ServeParams.model_validate({**params.model_dump(), **given}) if given else params


def served_config(params: ServeParams) -> dict[str, str]:
    """What each version is loaded with, over its own model_config: serve.precision, and serve.quantize
    unless it keeps the version's registered setting."""
    keep = params.quantize == "registered"
    return {"precision": params.precision} | ({} if keep else {"quantize": params.quantize})


def make_app(params_path: str | Path, name: str | None, params: ServeParams) -> FastAPI:
    """The app for the registered model `name` (default register.model_name), reaching the store once."""
    from flows.commands.serve.app import build_app
    from flows.commands.serve.follower import Follower, RegistrySource
    from flows.commands.serve.reqlog import RequestLog
    from stages.registry.tracking import tracking_uri

    reg = register_params(params_path)
    source = RegistrySource(
        tracking_uri(),
        name or reg.model_name,
        params.alias,
        reg.policy(),
        params.smoke_tolerance,
        served_config(params),
    )
    log = RequestLog(Path(params.log_dir), params)
    return build_app(Follower(source, params.poll_seconds), params, log)


def create_app() -> FastAPI:
    """`uvicorn --factory flows.commands.serve.command:create_app`: the app `ftpipe serve` describes in
    FTPIPE_SERVE_ARGS (what each of `--workers N` builds in its own process)."""
    spec = json.loads(os.environ.get(ARGS_ENV, "{}"))
    params_path = spec.get("params", "params.yaml")
    return make_app(params_path, spec.get("name"), serve_params(params_path, **spec.get("overrides", {})))


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from stages.registry.tracking import TrackingUnavailable, tracking_uri

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        params = serve_params(args.params, alias=args.alias, host=args.host, port=args.port)
    except ParamsError as exc:
        print(f"ftpipe serve: {exc}", file=sys.stderr)
        return 2
    kwargs: dict[str, Any] = {
        "host": params.host,
        "port": params.port,
        "timeout_graceful_shutdown": params.drain_seconds,
        "access_log": False,  # the request log (serve.log_dir) records every answered row
        "log_level": "info",
        "log_config": None,  # uvicorn's records go through the logging set up above
    }
    # uvicorn takes SIGTERM and Ctrl-C while it serves, drains, then raises the signal again: ignored here,
    # so a drained server exits 0 (cli.py's own handler would make it 143)
    signal.signal(signal.SIGTERM, _drained)
    signal.signal(signal.SIGINT, _drained)
    if args.workers > 1:
        os.environ[ARGS_ENV] = json.dumps(
            {"params": str(Path(args.params).resolve()), "name": args.name, "overrides": params.model_dump()}
        )
        uvicorn.run(f"{__name__}:create_app", factory=True, workers=args.workers, **kwargs)
        return 0
    try:
        app = make_app(args.params, args.name, params)
    except TrackingUnavailable as exc:
        print(f"ftpipe serve: {exc}", file=sys.stderr)
        return 1
    name = args.name or register_params(args.params).model_name
    LOG.info("following %s@%s in %s", name, params.alias, redact_uri(tracking_uri()))
    server = uvicorn.Server(uvicorn.Config(app, **kwargs))
    server.run()
    return 0 if server.started else 1


def _drained(signum: int, frame: FrameType | None) -> None:
    """What runs once uvicorn has drained the requests in flight and passes the signal on: nothing."""


def add_commands(sub: Any) -> None:
    """`ftpipe serve`."""
    p = sub.add_parser(
        "serve",
        help="serve the registered model over HTTP, following an alias (champion) as it moves",
        description="Answer /invocations (the request format of `mlflow models serve`) with the version the "
        "alias points at; when the alias moves, fetch, verify, load and smoke-test the new version beside "
        "the served one, then swap without dropping a request. Settings: the `serve` section of params.yaml.",
    )
    p.add_argument("--alias", help="the alias to follow (default: serve.alias, champion)")
    p.add_argument("--host", help="address to listen on (default: serve.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default: serve.port, 8080)")
    p.add_argument("--workers", type=int, default=1, help="processes behind the port, each with its own copy")
    p.add_argument("--name", help="registered model (default: register.model_name in the params file)")
    p.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    p.set_defaults(func=_cmd_serve)
