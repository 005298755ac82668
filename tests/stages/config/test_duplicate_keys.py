"""A key written twice in params.yaml is refused, as DVC refuses it (issue #22, item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stages.check import check_file
from stages.config.params import ParamsError, read_params_file

ROOT = Path(__file__).resolve().parents[3]


def test_a_duplicated_key_names_the_key_and_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("finetune:\n  epochs: 5\n  seed: 1\n  epochs: 7\n", encoding="utf-8")
    with pytest.raises(ParamsError) as err:
        read_params_file(path)
    message = str(err.value)
    assert "`finetune.epochs`" in message
    assert "line 2" in message and "line 4" in message
    assert str(path) in message


def test_a_duplicated_section_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("clean:\n  dedupe: true\nclean:\n  dedupe: false\n", encoding="utf-8")
    with pytest.raises(ParamsError, match=r"`clean` .*line 1.*line 3"):
        read_params_file(path)


def test_check_stage_fails_on_a_duplicated_key(tmp_path: Path) -> None:
    text = (ROOT / "params.yaml").read_text(encoding="utf-8")
    path = tmp_path / "params.yaml"
    path.write_text(text.replace("  epochs: 5\n", "  epochs: 5\n  epochs: 7\n"), encoding="utf-8")
    problems = check_file(path, ROOT / "dvc.yaml")
    assert any("finetune.epochs" in p for p in problems), problems


def test_the_shipped_params_yaml_has_no_duplicate(tmp_path: Path) -> None:
    assert read_params_file(ROOT / "params.yaml")["finetune"]["epochs"] >= 1
