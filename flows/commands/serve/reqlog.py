"""The request log: every answered row (or a sample) as Parquet segments, bounded in size and age.

    log = RequestLog(Path("serve-logs"), ServeParams())
    log.start(); log.add(rows); log.close()          # add never blocks and never raises

A background thread writes what waits as one segment every `serve.log_flush_seconds`
(`requests-<UTC time>-<pid>-<n>.parquet`, written beside and renamed, so a reader never sees half a file;
several workers write their own segments in the same folder). After each write the segments older than
`serve.log_retention_days` go, then the oldest until the folder holds at most `serve.log_max_bytes`.
Rows beyond `serve.log_queue_rows` waiting, or in a segment that cannot be written (a full disk), are
dropped and counted: `/version` shows the counts and the server's log says so once per streak.
Each row holds the version, label, score and class probabilities, and how the version read the text
(tokens, unknown tokens, windows, truncated: `ftpipe monitor` compares them with the training data), but
the text itself only with `serve.log_texts`.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from stages.config.serve import ServeParams

LOG = logging.getLogger("ftpipe.serve")
PREFIX, SUFFIX = "requests-", ".parquet"
SCHEMA = pa.schema(
    [
        ("time", pa.timestamp("us", tz="UTC")),
        ("request_id", pa.string()),
        ("row", pa.int32()),
        ("version", pa.string()),
        ("label", pa.string()),
        ("score", pa.float64()),
        ("probabilities", pa.map_(pa.string(), pa.float64())),
        # how the version read the text (textclf's WindowEncoder); null where it cannot say (another flavour)
        ("tokens", pa.int32()),  # special tokens included, before truncation
        ("unknown_tokens", pa.int32()),  # the tokenizer's unknown token (0 where it has none)
        ("windows", pa.int16()),
        ("truncated", pa.bool_()),  # longer than the windows hold
        ("text", pa.string()),  # null unless serve.log_texts
    ]
)


class RequestLog:
    """A bounded queue of answered rows and the thread that writes them as rotating Parquet segments."""

    def __init__(self, folder: Path, params: ServeParams, rng: random.Random | None = None) -> None:
        self.folder, self.p = folder, params
        self.rng = rng or random.Random()
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.closed = threading.Event()  # set once close() has written the last rows
        self._seq = 0
        self.written = self.dropped_queue_full = self.dropped_write_failed = self.removed_segments = 0
        self._failing = False

    def add(self, rows: list[dict[str, Any]]) -> None:
        """Queue `rows` (sampled at serve.sample_rate; texts kept only with serve.log_texts); never raises."""
        try:
            if self.p.sample_rate < 1.0:
                rows = [r for r in rows if self.rng.random() < self.p.sample_rate]
            if not self.p.log_texts:
                rows = [{**r, "text": None} for r in rows]
            with self._lock:
                if len(self._rows) + len(rows) > self.p.log_queue_rows:
                    self.dropped_queue_full += len(rows)
                    return
                self._rows.extend(rows)
        except Exception:  # noqa: BLE001 - the log never fails a request
            LOG.exception("request log: rows could not be queued")

    def counts(self) -> dict[str, int]:
        """What the log did so far (shown on /version)."""
        with self._lock:
            waiting = len(self._rows)
        return {
            "written_rows": self.written,
            "waiting_rows": waiting,
            "dropped_rows": self.dropped_queue_full + self.dropped_write_failed,
            "dropped_queue_full": self.dropped_queue_full,
            "dropped_write_failed": self.dropped_write_failed,
            "removed_segments": self.removed_segments,
        }

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ftpipe-serve-log", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Write what waits, then stop the writer."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self.flush()
        self.closed.set()

    def _run(self) -> None:
        while not self._stop.wait(self.p.log_flush_seconds):
            self.flush()

    def flush(self) -> None:
        """Write the waiting rows as one segment, then prune; a failure drops them, counted."""
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return
        try:
            self._write(rows)
            self.written += len(rows)
            if self._failing:
                LOG.warning("request log: writing again in %s", self.folder)
            self._failing = False
        except Exception as exc:  # noqa: BLE001 - a full disk, a removed folder: the rows go, counted
            self.dropped_write_failed += len(rows)
            if not self._failing:
                LOG.warning(
                    "request log: %d row(s) dropped, a segment could not be written to %s (%s); rows are "
                    "dropped and counted on /version until a write succeeds",
                    len(rows),
                    self.folder,
                    " ".join(str(exc).split()) or type(exc).__name__,
                )
            self._failing = True
        try:
            self.prune()
        except OSError as exc:
            LOG.warning("request log: old segments could not be removed from %s (%s)", self.folder, exc)

    def _write(self, rows: list[dict[str, Any]]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        name = f"{PREFIX}{stamp}-{os.getpid()}-{self._seq:06d}{SUFFIX}"
        table = pa.Table.from_pylist(rows, schema=SCHEMA)
        tmp = self.folder / f".{name}.tmp"
        try:
            pq.write_table(table, tmp, compression="zstd")
            tmp.rename(self.folder / name)
        finally:
            tmp.unlink(missing_ok=True)

    def segments(self) -> list[Path]:
        """The log's segments, oldest first (their names start with the UTC time they were written)."""
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob(f"{PREFIX}*{SUFFIX}"), key=lambda f: f.name)

    def prune(self) -> None:
        """Remove segments past serve.log_retention_days, then the oldest until under serve.log_max_bytes."""
        cutoff = time.time() - self.p.log_retention_days * 86400
        kept: list[tuple[Path, int]] = []
        for f in self.segments():
            st = f.stat()
            if st.st_mtime < cutoff:
                f.unlink(missing_ok=True)
                self.removed_segments += 1
            else:
                kept.append((f, st.st_size))
        total = sum(size for _, size in kept)
        for f, size in kept:
            if total <= self.p.log_max_bytes:
                break
            f.unlink(missing_ok=True)
            self.removed_segments += 1
            total -= size
