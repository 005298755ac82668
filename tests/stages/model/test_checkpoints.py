"""The checkpoint folder: another run's checkpoints are cleared, a half-written one is removed."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from stages.model.checkpoints import FINGERPRINT_FILE, prepare_checkpoints

LOG = logging.getLogger("ftpipe.finetune")


def test_checkpoints_of_other_params_are_cleared_not_resumed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ckpt = tmp_path / "ckpt"
    (ckpt / "checkpoint-8").mkdir(parents=True)
    (ckpt / FINGERPRINT_FILE).write_text(json.dumps({"fingerprint": "old"}))
    with caplog.at_level(logging.INFO, logger="ftpipe.finetune"):
        assert prepare_checkpoints(ckpt, "new", LOG) is None
    assert "clearing" in caplog.text
    assert [p.name for p in ckpt.iterdir()] == [FINGERPRINT_FILE]
    # same fingerprint, but the checkpoint is incomplete (killed mid-save): removed, fresh start
    (ckpt / "checkpoint-8").mkdir()
    assert prepare_checkpoints(ckpt, "new", LOG) is None
    assert not (ckpt / "checkpoint-8").exists()
