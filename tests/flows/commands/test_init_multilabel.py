"""`ftpipe init --task multi_label --label-separator SEP`: label sets from one delimited CSV cell, written as
label.task and ingest.label_separator; either flag without the other is one line naming it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, make_corpus, make_pipeline_repo
from tests.flows.commands.test_init import _init, _write_csv


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = make_pipeline_repo(tmp_path / "repo", {})
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    return root


def _sets(tmp_path: Path) -> Path:
    rows = make_corpus(6)
    for i, r in enumerate(rows):
        if i % 3 == 0:
            r["label"] = f"{r['label']}|urgent"
    return _write_csv(tmp_path / "tickets.csv", rows, ("id", "text", "tags"))


def test_multi_label_writes_the_task_and_the_separator(root: Path, tmp_path: Path, capsys) -> None:
    csv = _sets(tmp_path)
    assert _init(root, "tickets", "--csv", str(csv), "--label-column", "tags", "--task", "multi_label",
                 "--label-separator", "|") == 0  # fmt: skip
    out = capsys.readouterr().out
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert params["label"]["task"] == "multi_label" and params["ingest"]["label_separator"] == "|"
    assert params["ingest"]["label_field"] == "tags"
    labels_line = next(line for line in out.splitlines() if " labels: " in line)
    assert "4 labels: " in labels_line and "urgent 6" in labels_line and "|" not in labels_line
    assert "label.task" in out and "a text counts once under each of its labels" in out

    # the same data read as one label per text again: the task and the separator go back
    plain = _write_csv(tmp_path / "plain.csv", make_corpus(6), ("id", "text", "label"))
    assert _init(root, "tickets", "--csv", str(plain)) == 0
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert params["label"]["task"] == "single_label" and params["ingest"]["label_separator"] is None


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--label-separator", "|"), ["--label-separator", "--task multi_label"]),
        (("--task", "multi_label"), ["--label-separator", "--task multi_label"]),
    ],
)
def test_one_flag_without_the_other_is_one_line_and_changes_nothing(
    root: Path, tmp_path: Path, capsys, args: tuple[str, ...], words: list[str]
) -> None:
    before = (root / "params.yaml").read_bytes()
    assert _init(root, "tickets", "--csv", str(_sets(tmp_path)), "--label-column", "tags", *args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and all(w in err for w in words), err
    assert (root / "params.yaml").read_bytes() == before and not (root / "data/external/tickets.csv").exists()
