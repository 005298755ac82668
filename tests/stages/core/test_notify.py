"""FTPIPE_NOTIFY: one message per call at a local receiver, no secret in it, a dead notifier only logged."""

from __future__ import annotations

import logging

import pytest

from stages.core.notify import NOTIFY_ENV, notify
from stages.core.redact import MASK, mask_secrets
from tests.notify_receiver import receiver, refused_url

SECRET = "hunter2-notify-password"


def test_a_message_arrives_once_with_the_report_and_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    with receiver() as got:
        monkeypatch.setenv(NOTIFY_ENV, got.url(SECRET))
        assert notify("ftpipe drift: warn", f"domain AUC 0.91 (see {got.url(SECRET)})", "reports/drift.json")
    assert got.titles() == ["ftpipe drift: warn"]
    body = got.messages[0]["message"]
    assert "domain AUC 0.91" in body and "Report: reports/drift.json" in body
    assert all(SECRET not in raw.decode() for raw in got.raw) and MASK in body


def test_several_urls_each_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with receiver() as a, receiver() as b:
        monkeypatch.setenv(NOTIFY_ENV, f"{a.url()} , {b.url()}")
        assert notify("t", "b")
    assert a.titles() == ["t"] and b.titles() == ["t"]


def test_unset_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(NOTIFY_ENV, raising=False)
    assert notify("t", "b") is False


def test_a_receiver_that_refuses_costs_one_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(NOTIFY_ENV, refused_url())
    with caplog.at_level(logging.DEBUG):
        assert notify("ftpipe run failed", "stage 'ingest' failed") is False
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and "not delivered" in lines[0].getMessage()
    assert SECRET not in caplog.text


def test_the_urls_and_their_tokens_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    token = "T0KEN0000ABCDEFGHIJK"
    monkeypatch.setenv(
        NOTIFY_ENV, f"slack://{token}/B1111111111/abcdefghijklmnopqrstuvwx mailto://me:pw-123@x.org"
    )
    text = mask_secrets(f"posting with {token} and abcdefghijklmnopqrstuvwx and pw-123")
    assert token not in text and "abcdefghijklmnopqrstuvwx" not in text and "pw-123" not in text
