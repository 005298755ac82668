"""Team mode on real components: the registry is an `mlflow server` on a real PostgreSQL 16 (PyPI `pgserver`,
started here) with its own artifact store; `ftpipe serve` follows it, and a promotion made from another
process (`ftpipe promote`) reaches the running server. Skipped, saying why, only where pgserver cannot start.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from stages.registry.tracking import use_store
from tests.conftest import REPO
from tests.flows.commands.serve.support import register_versions, request, serve
from tests.registry_support import start_mlflow_server

NAME = "team"


@pytest.fixture(scope="module")
def mlflow_on_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mlflow server` on 127.0.0.1 backed by a PostgreSQL started for the module; its URI."""
    root = tmp_path_factory.mktemp("team")
    try:
        import pgserver

        # not under pytest's tmp: as root, pgserver runs PostgreSQL as another user, who cannot enter it
        pg_dir = Path(tempfile.mkdtemp(prefix="ftpipe-pg-"))
        pg = pgserver.get_server(pg_dir, cleanup_mode="stop")
        # psycopg2 named: SQLAlchemy's default PostgreSQL driver here is psycopg 3, not installed
        pg_uri = pg.get_uri().replace("postgresql://", "postgresql+psycopg2://", 1)
    except Exception as exc:  # noqa: BLE001 - any reason it cannot start is the skip's reason
        pytest.skip(f"pgserver cannot start a PostgreSQL here ({type(exc).__name__}: {exc})")
    try:
        yield from start_mlflow_server(root, backend=pg_uri, ready_s=120)
    finally:
        pg.cleanup()
        shutil.rmtree(pg_dir, ignore_errors=True)


def test_a_promotion_from_another_process_reaches_the_running_server(
    mlflow_on_postgres: str, tmp_path: Path
) -> None:
    uri = mlflow_on_postgres
    ws = register_versions(tmp_path, uri, NAME, 1)
    client = MlflowClient(uri, uri)
    src = client.get_model_version(NAME, "1")
    # version 2: the same logged model registered again (its files, manifest and smoke record): a second
    # version without a second registration run
    use_store(uri)
    assert str(mlflow.register_model(src.source, NAME, tags=dict(src.tags)).version) == "2"
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "1"
    with serve(tmp_path / "work", uri, NAME, {"poll_seconds": 0.5, "log_dir": str(tmp_path / "log")}) as srv:
        assert srv.version()["version"] == "1"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
            "MLFLOW_TRACKING_URI": uri,
        }
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "flows.commands.cli",
                "promote",
                "2",
                "--reason",
                "team test",
                "--name",
                NAME,
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        srv.wait_for(lambda s: s["version"] == "2", 60, "the promoted version served")
        status, headers, body = request(f"{srv.url}/invocations", {"instances": ws.texts[:3]})
        assert status == 200 and headers["x-model-version"] == body["version"] == "2"
