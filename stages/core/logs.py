"""Logging set-up, called from a stage's `main()` (never at import).

`FTPIPE_VERBOSE=1` (what `ftpipe -v` sets for the stages it runs) turns on DEBUG lines; the default is
INFO. `ftpipe run` keeps a stage's output in its log file and shows it only on failure or with -v.
"""

from __future__ import annotations

import logging
import os
import sys
from types import TracebackType

VERBOSE_ENV = "FTPIPE_VERBOSE"


def verbose_requested() -> bool:
    """True when FTPIPE_VERBOSE is set to 1/true/yes (`ftpipe -v` sets it)."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """A stage's uncaught error: a full disk is one ERROR line (stages/core/io.py's `DiskFull`: the path,
    the free space), its traceback only with FTPIPE_VERBOSE=1; any other error as Python prints it."""
    from stages.core.io import as_disk_full  # here: only a crash pays for the import

    full = None if verbose_requested() else as_disk_full(exc)
    if full is None:
        sys.__excepthook__(kind, exc, tb)
    else:
        logging.getLogger("ftpipe").error("DiskFull: %s", full)


def setup_logging(stage: str) -> logging.Logger:
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s {stage} %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    if verbose_requested():  # DEBUG for ftpipe's own lines, not for every library's
        logging.getLogger("ftpipe").setLevel(logging.DEBUG)
    sys.excepthook = _excepthook  # a full disk is one line (issue 22)
    return logging.getLogger(f"ftpipe.{stage}")
