"""Secrets out of every message: the tracking password never reaches a log, a report or an artifact.

    mask_secrets("API request to http://bob:s3cret@host/api failed")  # -> "... http://bob:***@host/api ..."

MLflow copies the tracking URI, password included, into its exception text ("API request to
http://user:pass@host/... failed"). Everything ftpipe prints, logs, tags or writes about a registry failure
goes through `mask_secrets`: the password of any `scheme://user:password@` in the text, a token given as
the user name (`https://TOKEN@host`, 20 characters or more), the value of any credential query parameter
(`?token=`, `access_token`, `api_key`, `sig`, ...: `CREDENTIAL_PARAMS`, and any name holding a word of
`CREDENTIAL_WORDS`: `private_token`, `x-api-key`, ...), and the
values of the credential variables (`MLFLOW_TRACKING_PASSWORD`, `MLFLOW_TRACKING_TOKEN`, and the password
and credential parameters of `MLFLOW_TRACKING_URI`, and the Apprise URLs of `FTPIPE_NOTIFY` with their
tokens) wherever they appear, also URL-encoded. No imports beyond the standard library: the
retrain flow and the CLI use it without loading MLflow.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import traceback
from typing import Any, TextIO
from urllib.parse import quote, unquote, urlsplit, urlunsplit

MASK = "***"
SECRET_ENV = ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
# Apprise URLs of stages/core/notify.py: each URL, its password and every long part of it (Slack, Discord
# and Teams put their tokens in the path) are secrets
NOTIFY_ENV = "FTPIPE_NOTIFY"
NOTIFY_TOKEN_CHARS = 16
# scheme://user:password@ : the password is anything up to the `@` that ends the authority
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/:@]*:)(?P<pw>[^\s/@]+)(?=@)")
# scheme://TOKEN@ : a user name with no password, long enough to be a token (GitHub, GitLab, Slack put
# them there); a short one (`postgres@`, `git@`) is a user name and stays
TOKEN_USER_CHARS = 20
_USER_TOKEN = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^\s/:@?#]{" + str(TOKEN_USER_CHARS) + r",})(?=@)"
)
# query parameters that carry a credential (names compared case-insensitively, `-` as `_`)
CREDENTIAL_PARAMS = (
    "token",
    "access_token",
    "auth",
    "auth_token",
    "api_key",
    "apikey",
    "key",
    "password",
    "passwd",
    "secret",
    "client_secret",
    "sig",
    "signature",
    "x_amz_signature",
    "x_amz_credential",
    "x_amz_security_token",
)
# ... and any name that says it holds one: private_token, refresh_token, x-api-key, client_secret, ...
CREDENTIAL_WORDS = ("token", "secret", "passwd", "password", "api_key", "apikey", "signature", "credential")
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&;](?:"
    + "|".join(p.replace("_", "[_-]") for p in CREDENTIAL_PARAMS)
    + "|[A-Za-z0-9_.-]*(?:"
    + "|".join(w.replace("_", "[_-]") for w in CREDENTIAL_WORDS)
    + r")[A-Za-z0-9_.-]*"
    + r")=)(?P<value>[^&#;\s\"'<>]+)",
    re.IGNORECASE,
)


def redact_uri(uri: str) -> str:
    """The URI without a password (`http://user:***@host`), fit for logs, tags and reports."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<unparseable URI>"
    if parts.password is not None:
        netloc = f"{parts.username}:{MASK}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        uri = urlunsplit(parts._replace(netloc=netloc))
    uri = _USER_TOKEN.sub(lambda m: m["head"] + MASK, uri)
    return _QUERY_SECRET.sub(lambda m: m["head"] + MASK, uri)


def _query_secrets(uri: str) -> list[str]:
    """The values of the credential query parameters of `uri`."""
    return [m["value"] for m in _QUERY_SECRET.finditer(uri)]


def known_secrets() -> list[str]:
    """The credential values in this process's environment (each also URL-encoded and decoded)."""
    values = [os.environ.get(k, "") for k in SECRET_ENV]
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    try:
        values.append(urlsplit(uri).password or "")
    except ValueError:
        pass
    values.extend(unquote(v) for v in _query_secrets(uri))
    for url in re.split(r"[\s,]+", os.environ.get(NOTIFY_ENV, "")):
        if not url:
            continue
        values.append(url)
        try:
            values.append(urlsplit(url).password or "")
        except ValueError:
            pass
        values.extend(unquote(v) for v in _query_secrets(url))
        rest = url.split("://", 1)[-1].split("?", 1)[0]
        values.extend(part for part in re.split(r"[/@:]", rest) if len(part) >= NOTIFY_TOKEN_CHARS)
    out: set[str] = set()
    for v in values:
        if len(v) >= 3:  # a one- or two-character "secret" would mask ordinary text
            out |= {v, quote(v, safe=""), unquote(v)}
    return sorted(out, key=len, reverse=True)


def mask_secrets(text: str) -> str:
    """`text` with every URI password and every known credential value replaced by `***`."""
    text = _USERINFO.sub(lambda m: m["head"] + MASK, str(text))
    text = _USER_TOKEN.sub(lambda m: m["head"] + MASK, text)
    text = _QUERY_SECRET.sub(lambda m: m["head"] + MASK, text)
    for secret in known_secrets():
        text = text.replace(secret, MASK)
    return text


class MaskSecrets(logging.Filter):
    """A logging filter that masks secrets in each record's final message (MLflow's own loggers too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        masked = mask_secrets(msg)
        if masked != msg:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:  # a logged traceback carries exception text too
            record.exc_text = mask_secrets("".join(traceback.format_exception(*record.exc_info))).rstrip()
        return True


class MaskedStream:
    """A text stream that masks secrets in what is written to it (MLflow prints run URLs to stdout)."""

    def __init__(self, stream: TextIO):
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(mask_secrets(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def mask_output() -> None:
    """Mask secrets in everything this process prints (stdout, stderr) and logs; for entry points."""
    if not isinstance(sys.stdout, MaskedStream):
        sys.stdout = MaskedStream(sys.stdout)
    if not isinstance(sys.stderr, MaskedStream):
        sys.stderr = MaskedStream(sys.stderr)
    mask_logging()


def mask_logging() -> None:
    """Put `MaskSecrets` on every handler of the root logger (call after logging is set up)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, MaskSecrets) for f in handler.filters):
            handler.addFilter(MaskSecrets())
