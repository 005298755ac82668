"""monitor: served traffic of a window against the champion's stored profile and test predictions.

    ftpipe monitor                      # the last monitor.since_hours (24 h) of serve.log_dir
    ftpipe monitor --since 6h           # 30m, 6h, 7d

Reads the request log `ftpipe serve` writes (`serve.log_dir`; texts only with `serve.log_texts`), the
champion's data profile and its test predictions (reports/predictions.csv, logged with the version), and
compares them (flows/commands/monitor/core.py). Writes reports/monitor/<window end>.json and
reports/monitor/latest.json, each with its page beside it (.html: flows/commands/monitor/page.py), and
says the outcome in one line: pass | warn | fail | insufficient. Exit 0 whatever the outcome (the report
says it); 1 when there is no champion or the registry cannot be read; 2 for a bad `--since` or params.
"""

from __future__ import annotations

import io
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd

from flows.commands.monitor.core import MonitorReport, Reference, compare, parse_since, read_log
from flows.commands.monitor.event import emit_drift
from flows.commands.monitor.page import monitor_series, render_monitor_page, write_page
from flows.commands.predict.model import register_params
from flows.commands.serve.command import serve_params
from stages.config.monitor import MonitorParams
from stages.config.params import ParamsError, load_section, read_params_file
from stages.core.io import write_json
from stages.core.notify import notify
from stages.core.redact import mask_secrets
from stages.reports.profile import as_profile

REPORT_DIR = Path("reports/monitor")


def monitor_params(params_path: str | Path) -> MonitorParams:
    """The `monitor` section of the params file, or its defaults where there is none."""
    path = Path(params_path)
    if path.is_file() and "monitor" in read_params_file(path):
        return load_section("monitor", MonitorParams, path)
    return MonitorParams()


def champion_reference(params_path: str | Path, name: str | None) -> Reference:
    """The champion's version, stored profile and test predictions; ValueError says what is missing."""
    from stages.registry import tags as registry_tags
    from stages.registry.reader import RegistryReader
    from stages.registry.tracking import tracking_uri

    reg = register_params(params_path)
    reader = RegistryReader.connect(tracking_uri(), name or reg.model_name, reg.policy())
    record = reader.champion_record()
    if record is None:
        raise ValueError(
            f"registered model `{reader.name}` has no champion: there is nothing to compare with"
        )
    profile = as_profile(record.profile)
    if isinstance(profile, str) or record.run_id is None:
        why = profile if isinstance(profile, str) else "no registration run"
        raise ValueError(f"the champion (version {record.version}) cannot be compared: {why}")
    raw = reader.artifact(record.run_id, f"{registry_tags.REPORTS_DIR}/predictions.csv")
    preds = pd.read_csv(io.BytesIO(raw), dtype={"pred": str})
    return Reference(record.version, profile, preds)


def write_report(report: MonitorReport, folder: Path = REPORT_DIR) -> Path:
    """reports/monitor/<window end, UTC>.json and latest.json (the same figures)."""
    end = datetime.fromisoformat(str(report.window["end"]))
    path = folder / f"monitor-{end.strftime('%Y%m%dT%H%M%SZ')}.json"
    write_json(path, report.dump())
    write_json(folder / "latest.json", report.dump())
    return path


def run_monitor(params_path: str | Path, since: str | None, name: str | None, root: Path = Path()) -> int:
    """The command's body: the window, the reference, the comparison, the report, one line."""
    try:
        p = monitor_params(params_path)
        hours = parse_since(since) if since else p.since_hours
        log_dir = Path(serve_params(params_path).log_dir)
    except (ParamsError, ValueError) as exc:
        print(f"ftpipe monitor: {exc}", file=sys.stderr)
        return 2
    try:
        ref = champion_reference(params_path, name)
    except Exception as exc:  # noqa: BLE001 - a registry that is down, no champion: one line
        print(f"ftpipe monitor: {mask_secrets(str(exc))}", file=sys.stderr)
        return 1
    end = datetime.now(timezone.utc)
    start = end - timedelta(hours=hours)
    rows = read_log(root / log_dir, start)
    report = compare(rows, ref, p, start, end)
    path = write_report(report, root / REPORT_DIR)
    write_page(render_monitor_page(report, monitor_series(rows, ref, start, end)), path)  # beside it, .html
    if report.outcome in ("warn", "fail"):
        notify(f"ftpipe monitor: {report.outcome} on champion {report.champion}", report.reason, path)
        emit_drift(report, name or register_params(params_path).model_name)
    print(
        f"ftpipe monitor: {report.outcome} (champion {report.champion}, {report.rows['champion']} row(s) in "
        f"{hours:g} h): {report.reason}. Report: {path}"
    )
    return 0
