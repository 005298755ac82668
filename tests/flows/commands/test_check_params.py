"""`ftpipe check --params PATH`, as the other commands take it: another params file, same checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flows.commands.cli import build_parser
from tests.conftest import REPO


def cli(*argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return int(args.func(args))


def test_check_reads_the_params_file_it_is_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / ".dvc").mkdir()
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    other = tmp_path / "experiment.yaml"
    other.write_text((REPO / "params.yaml").read_text().replace("  timezone: UTC", "  timezon: UTC"))
    assert cli("check", "--root", str(tmp_path), "--params", str(other)) == 2
    err = capsys.readouterr().err
    assert "unknown key `retrain.timezon`" in err and "problem(s) in experiment.yaml" in err
    assert cli("check", "--root", str(tmp_path)) == 0  # the root's own params.yaml is clean
    assert "params.yaml is valid" in capsys.readouterr().out
