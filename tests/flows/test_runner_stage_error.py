"""`stage_error`: what `ftpipe run` says a failed stage's error was.

A stage that catches its own error logs it as one ERROR line (stages/core/logs.py's format, `HH:MM:SS
stage ERROR message`) and exits 1 without a traceback, as register does. Before, `stage_error` gave the
stage's last five stderr lines (INFO lines and all) for it; now it gives that logged message.
"""

from __future__ import annotations

from flows.runner import stage_error

# the real stderr of `python -m stages.register` under `dvc repro` with MLFLOW_TRACKING_URI=http://127.0.0.1:9
# and register.retries = 0 (captured 2026-12-06), DVC's own last line included
REGISTER_STDERR = [
    "02:08:02 register INFO data profile from data/processed/profile.json",
    "02:08:02 register ERROR TrackingUnavailable: MLflow tracking store at http://127.0.0.1:9 did not answer: "
    "1 attempt(s) in 0 s (register.retries = 0, register.timeout_s = 5; last error: connection refused "
    "(nothing listens there)). Start it (e.g. `mlflow server --host 127.0.0.1 --port 5000`), fix "
    "MLFLOW_TRACKING_URI, or unset it to use the local SQLite store; then run again. (reports/registry.json "
    "is left as the last successful run wrote it; run with -v or FTPIPE_VERBOSE=1 for the traceback)",
    "ERROR: failed to reproduce 'register': failed to run: python -m stages.register, exited with 1",
]


def test_a_logged_error_line_is_the_message() -> None:
    message = stage_error(REGISTER_STDERR)
    assert message.startswith(
        "TrackingUnavailable: MLflow tracking store at http://127.0.0.1:9 did not answer"
    )
    assert "INFO" not in message and "\n" not in message and "ERROR" not in message


def test_the_last_of_several_logged_errors_and_lines_after_it() -> None:
    lines = [
        "02:08:01 clean ERROR first problem",
        "02:08:02 clean INFO still going",
        "02:08:03 clean ERROR DiskFull: no space left on device writing data/interim/clean.parquet: 0 B free",
        "/usr/lib/python3.11/site-packages/x.py:3: UserWarning: something at shutdown",
    ]
    assert (
        stage_error(lines) == "DiskFull: no space left on device writing data/interim/clean.parquet: 0 B free"
    )


def test_a_traceback_still_wins_over_a_logged_error() -> None:
    lines = [
        "02:08:01 clean ERROR a logged problem",
        "Traceback (most recent call last):",
        '  File "stages/clean.py", line 9, in <module>',
        "stages.clean.CleanError: the real crash",
    ]
    assert stage_error(lines) == "CleanError: the real crash"


def test_no_logged_error_keeps_the_last_lines() -> None:
    assert stage_error(["02:08:01 clean INFO reading", "killed"]) == "02:08:01 clean INFO reading\nkilled"
