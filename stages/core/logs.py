"""Logging set-up, called from a stage's `main()` (never at import)."""

from __future__ import annotations

import logging


def setup_logging(stage: str) -> logging.Logger:
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s {stage} %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    return logging.getLogger(f"ftpipe.{stage}")
