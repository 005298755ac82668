"""People told: one short message to every Apprise URL in FTPIPE_NOTIFY; never a failure of the sender.

    notify("ftpipe: drift fail", "domain AUC 0.99 vs champion 3", "reports/drift.json")

FTPIPE_NOTIFY (environment only: the URLs hold tokens) lists one or more Apprise URLs, separated by
spaces or commas (`slack://...`, `mailto://...`, `json://host:port/`, ...). Unset: nothing is sent. A
message goes through `mask_secrets` (the URLs themselves are known secrets, stages/core/redact.py). A
notifier that is down, refuses or hangs costs one warning line in the log and is otherwise ignored: a
run, a stage or a request never fails for it.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from stages.core.redact import NOTIFY_ENV, mask_secrets

LOG = logging.getLogger("ftpipe.notify")
MAX_BODY = 1500  # one short message: a chat line, not a report


def notify_urls() -> list[str]:
    """The Apprise URLs in FTPIPE_NOTIFY (none when it is unset or blank)."""
    return [u for u in re.split(r"[\s,]+", os.environ.get(NOTIFY_ENV, "")) if u]


def notify(title: str, body: str, report: str | Path | None = None) -> bool:
    """Send `title` and `body` (with the report's path or link) to FTPIPE_NOTIFY; True when delivered."""
    urls = notify_urls()
    if not urls:
        return False
    text = " ".join(body.split())[:MAX_BODY] + (f"\nReport: {report}" if report else "")
    quiet = logging.getLogger("apprise")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL + 1)  # its own lines would name the URL; ours is the one line below
    try:
        import apprise  # here, not at the top: only a configured notifier pays its import (~0.1 s)

        sender = apprise.Apprise()
        added = sum(bool(sender.add(u)) for u in urls)
        ok = added == len(urls) and bool(sender.notify(title=mask_secrets(title), body=mask_secrets(text)))
        if not ok:
            LOG.warning(
                "notification %r not delivered to every FTPIPE_NOTIFY URL (%d of %d understood); going on",
                mask_secrets(title),
                added,
                len(urls),
            )
        return ok
    except Exception as exc:  # noqa: BLE001 - a notifier never fails its sender
        LOG.warning("notification %r not sent (%s); going on", mask_secrets(title), type(exc).__name__)
        return False
    finally:
        quiet.setLevel(level)
