"""A `-S` that cannot be applied is refused in ftpipe's words, with exit 2 like every bad input.

Issue #33, item 5: `-S finetune.epoch=1` got Hydra's hint "To append to your config use
+finetune.epoch=1", which leads nowhere. Issue #34, item 9: an unknown key exited 1, a bad value 2.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flows.commands.cli import build_parser

REPO = Path(__file__).resolve().parents[2]


def cli(*argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return int(args.func(args))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    from dvc.repo import Repo

    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    Repo.init(str(tmp_path), no_scm=True)
    return tmp_path


@pytest.mark.parametrize(
    ("override", "nearest"),
    [
        ("finetune.epoch=1", "finetune.epochs"),
        ("finetun.epochs=1", "finetune.epochs"),
        ("clean.min_word=2", "clean.min_words"),
    ],
)
def test_an_unknown_key_names_the_nearest_keys_and_exits_2(
    repo: Path, override: str, nearest: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (repo / "params.yaml").read_bytes()
    assert cli("run", "--root", str(repo), "-S", override) == 2
    err = capsys.readouterr().err
    assert f"`{nearest}`" in err and f"`{override.partition('=')[0]}`" in err
    assert "+" + override not in err and "append to your config" not in err
    assert (repo / "params.yaml").read_bytes() == before


@pytest.mark.parametrize("override", ["finetune.epochs=abc", "finetune.epochs", "finetune.epochs=[1"])
def test_a_bad_value_or_form_exits_2_too(
    repo: Path, override: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("run", "--root", str(repo), "-S", override) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "append to your config" not in err
