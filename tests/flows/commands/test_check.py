"""`ftpipe check`, and `ftpipe run`'s check before DVC starts: -S overrides that fail are put back."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flows.commands.cli import build_parser
from flows.params import ParamsProblems, apply_overrides, params_problems
from tests.conftest import REPO


@pytest.fixture
def ftpipe_repo(tmp_path: Path) -> Path:
    """The shipped params.yaml and dvc.yaml in a folder DVC takes for a repository."""
    (tmp_path / ".dvc").mkdir()
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    return tmp_path


def cli(*argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return args.func(args)


def test_check_is_clean_on_the_shipped_params(ftpipe_repo: Path, capsys) -> None:
    assert params_problems(REPO) == []
    assert cli("check", "--root", str(ftpipe_repo)) == 0
    assert "params.yaml is valid" in capsys.readouterr().out


def test_check_prints_each_problem_once_and_exits_2(ftpipe_repo: Path, capsys) -> None:
    path = ftpipe_repo / "params.yaml"
    text = path.read_text()
    text = text.replace("learning_rate: 1.0e-4", "learning_rate: -1.0e-4").replace(
        "  timezone: UTC", "  timezon: UTC"
    )
    path.write_text(text)
    assert cli("check", "--root", str(ftpipe_repo)) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and err[-1] == "ftpipe check: 2 problem(s) in params.yaml"
    assert err[0].endswith("`finetune.learning_rate` = -0.0001 is invalid: Input should be greater than 0")
    assert "unknown key `retrain.timezon` (value 'UTC'); allowed keys here: schedule_cron, timezone" in err[1]


def test_run_checks_before_dvc_and_leaves_params_as_they_were(ftpipe_repo: Path, capsys) -> None:
    path = ftpipe_repo / "params.yaml"
    original = path.read_bytes()
    rc = cli("run", "--root", str(ftpipe_repo), "-S", "finetune.learning_rate=-1", "-S", "clean.min_words=30")
    assert rc == 2 and path.read_bytes() == original
    err = capsys.readouterr().err
    assert err.count("`finetune.learning_rate` = -1 is invalid") == 1 and "min_words" not in err
    assert err.strip().splitlines()[-1] == (
        "ftpipe run: 1 problem(s) in params.yaml with the -S overrides applied; nothing ran and "
        "params.yaml is as it was."
    )
    path.write_bytes(original.replace(b"min_words: 3", b"min_words: -5"))
    assert cli("run", "--root", str(ftpipe_repo)) == 2  # a bad file stops the run with no override too
    assert capsys.readouterr().err.count("`clean.min_words` = -5 is invalid") == 1


def test_apply_overrides_keeps_good_values_and_puts_bad_ones_back(ftpipe_repo: Path) -> None:
    path = ftpipe_repo / "params.yaml"
    original = path.read_bytes()
    assert apply_overrides(ftpipe_repo, ["clean.min_words=30"], keep=False) == [
        {"file": "params.yaml", "key": "clean.min_words", "old": 3, "new": 30}
    ]
    assert path.read_bytes() == original  # a trial
    with pytest.raises(ParamsProblems) as exc:
        apply_overrides(ftpipe_repo, ["clean.min_words=30", "+clean.lowercse=true"])
    assert path.read_bytes() == original and len(exc.value.problems) == 1
    apply_overrides(ftpipe_repo, ["clean.min_words=30"])
    kept = path.read_bytes()
    comments = [line for line in original.splitlines() if line.lstrip().startswith(b"#")]
    assert b"min_words: 30" in kept and comments and all(c in kept for c in comments)  # comments too


def test_a_repo_with_its_own_stages_is_checked_by_its_dvc_yaml(tiny_repo: Path) -> None:
    """The flow tests' tiny repo: `train` is its dvc.yaml's section, `retrain` the flow's; no ftpipe stage."""
    assert params_problems(tiny_repo) == []
    assert apply_overrides(tiny_repo, ["train.factor=2"])[0]["new"] == 2
    with pytest.raises(ParamsProblems, match=r"`retrain.timezone` = '' is invalid"):
        apply_overrides(tiny_repo, ["retrain.timezone=''"])
    assert "factor: 2" in (tiny_repo / "params.yaml").read_text()
    assert "timezone: UTC" in (tiny_repo / "params.yaml").read_text()
