"""`ftpipe init` and the label column: an empty one is refused, blank labels are named as such (issue #34,
item 6). Before, an all-empty column passed (exit 0) and `dvc repro label` failed with "0 class(es) left";
with some labels empty, the summary listed a class with no name."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, make_corpus, make_pipeline_repo
from tests.flows.commands.test_init import _init, _write_csv


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = make_pipeline_repo(tmp_path / "repo", {})
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    return root


def test_an_all_empty_label_column_is_refused(root: Path, tmp_path: Path, capsys) -> None:
    rows = [{**r, "label": ""} for r in make_corpus(4)]
    export = _write_csv(tmp_path / "export.csv", rows, ("id", "text", "topic"))
    before = (root / "params.yaml").read_bytes()
    assert _init(root, "news", "--csv", str(export), "--label-column", "topic") == 2
    err = capsys.readouterr().err
    assert "`topic`" in err and "empty" in err and "--label-column" in err
    assert len(err.strip().splitlines()) == 1
    assert (root / "params.yaml").read_bytes() == before and not (root / "data/external/export.csv").exists()


def test_a_single_class_is_refused(root: Path, tmp_path: Path, capsys) -> None:
    rows = [{**r, "label": "same"} for r in make_corpus(4)]
    export = _write_csv(tmp_path / "export.csv", rows, ("id", "text", "label"))
    assert _init(root, "news", "--csv", str(export)) == 2
    assert "one class" in capsys.readouterr().err


def test_blank_labels_are_shown_as_blank_and_counted(root: Path, tmp_path: Path, capsys) -> None:
    rows = make_corpus(4)
    rows[0]["label"], rows[1]["label"] = "", "  "
    export = _write_csv(tmp_path / "export.csv", rows, ("id", "text", "label"))
    assert _init(root, "news", "--csv", str(export)) == 0
    out = capsys.readouterr().out
    labels_line = next(line for line in out.splitlines() if " labels: " in line)
    assert "3 labels: " in labels_line and ", ," not in labels_line and ":  " not in labels_line
    assert "2 rows with a blank label" in out and "quarantine" in out
