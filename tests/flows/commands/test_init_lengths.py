"""`ftpipe init` reports the texts' lengths and, for short texts, proposes a `clean.min_words` that keeps
99% of the rows (issue #33, item 3: the default min_words 3 dropped 25 one-line rows like "MIDI player")."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from flows.commands.init import short_text_floor
from tests.conftest import REPO, make_corpus, make_pipeline_repo
from tests.flows.commands.test_init import _init, _write_csv


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = make_pipeline_repo(tmp_path / "repo", {})
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    return root


def test_the_floor_keeps_99_percent_of_the_rows() -> None:
    assert short_text_floor([1] * 10 + [8] * 90, 3) == 1  # 10% under 3 words: the floor comes down
    assert short_text_floor([2] * 10 + [8] * 990, 3) == 3  # 1% under 3 words: as it is
    assert short_text_floor([2] * 5 + [1] * 5 + [8] * 190, 3) == 1  # 2.5% under 2, 5% under 3: 1 keeps 99%
    assert short_text_floor([8] * 100, 3) == 3


def test_short_texts_lower_min_words_and_say_why(root: Path, tmp_path: Path, capsys) -> None:
    rows = make_corpus(4)
    for i, r in enumerate(rows[:4]):
        r["text"] = ["MIDI player", "shooter game", "x", "photo editor"][i]
    export = _write_csv(tmp_path / "export.csv", rows, ("id", "text", "label"))
    assert _init(root, "tools", "--csv", str(export)) == 0
    out = capsys.readouterr().out
    assert "text lengths: median" in out and "words" in out
    assert "clean.min_words 3 -> 1" in out and "99%" in out
    assert yaml.safe_load((root / "params.yaml").read_text())["clean"]["min_words"] == 1


def test_long_texts_keep_min_words(root: Path, tmp_path: Path, capsys) -> None:
    export = _write_csv(tmp_path / "export.csv", make_corpus(4), ("id", "text", "label"))
    assert _init(root, "news", "--csv", str(export)) == 0
    out = capsys.readouterr().out
    assert "text lengths: median" in out and "clean.min_words" not in out
    assert yaml.safe_load((root / "params.yaml").read_text())["clean"]["min_words"] == 3
