"""Reading params.yaml is bounded in time and memory whatever the file holds (issue #34, item 2).

An alias bomb, a value of megabytes and a nesting a thousand deep each end in one short line naming the
file and the fix, never in minutes of CPU, gigabytes of memory, a megabyte error line or a traceback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stages.check import check_file
from stages.config.params import MAX_SHOWN_CHARS, ParamsError, read_params_file

ROOT = Path(__file__).resolve().parents[3]


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """`a: &a [x x ...]`, `b: &b [*a *a ...]`, ... : width**levels strings once expanded (9**9 = 387M)."""
    names = "abcdefghijklmnopqrstuvwxyz"[:levels]
    lines = [f"{names[0]}: &{names[0]} [{', '.join(['x'] * width)}]"]
    for prev, name in zip(names, names[1:], strict=False):
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * width)}]")
    return "\n".join(lines) + f"\nlabel: {{labels: *{names[-1]}}}\n"


def check_in_a_bounded_process(path: Path) -> subprocess.CompletedProcess[str]:
    """`check_file` in a child with 2 GB of address space and 60 s: the bomb must not need either."""
    code = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30));"
        "from stages.check import check_file;"
        f"problems = check_file({str(path)!r}, {str(ROOT / 'dvc.yaml')!r});"
        "print(max(len(p) for p in problems)); print(problems[0][:300])"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_an_alias_bomb_is_refused_in_one_short_line(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(alias_bomb(), encoding="utf-8")
    proc = check_in_a_bounded_process(path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    longest, first = proc.stdout.splitlines()[:2]
    assert int(longest) <= 1000
    assert "aliases" in first and str(path) in first


def test_a_few_honest_aliases_still_load(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("base: &base {a: 1, b: [1, 2]}\nx: *base\ny: *base\n", encoding="utf-8")
    assert read_params_file(path)["y"] == {"a": 1, "b": [1, 2]}


def test_a_huge_value_under_an_unknown_key_gives_a_short_line(tmp_path: Path) -> None:
    text = (ROOT / "params.yaml").read_text(encoding="utf-8")
    path = tmp_path / "params.yaml"
    path.write_text(text.replace("  epochs: 5\n", "  epochs: 5\n  epoch: " + "x" * 10_000_000 + "\n"))
    problems = check_file(path, ROOT / "dvc.yaml")
    assert any("finetune.epoch" in p for p in problems), [p[:200] for p in problems]
    assert max(len(p) for p in problems) <= 2 * MAX_SHOWN_CHARS + 500


def test_a_huge_invalid_value_is_shown_cut(tmp_path: Path) -> None:
    text = (ROOT / "params.yaml").read_text(encoding="utf-8")
    path = tmp_path / "params.yaml"
    path.write_text(text.replace("  epochs: 5\n", "  epochs: [" + ", ".join(["7"] * 50_000) + "]\n"))
    problems = check_file(path, ROOT / "dvc.yaml")
    assert any("finetune.epochs" in p for p in problems)
    assert max(len(p) for p in problems) <= 2 * MAX_SHOWN_CHARS + 500


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deep_nesting_is_one_error_not_a_recursion_traceback(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("label:\n  labels: " + "[" * depth + "x" + "]" * depth + "\n", encoding="utf-8")
    with pytest.raises(ParamsError, match="nested") as err:
        read_params_file(path)
    assert len(str(err.value)) < 600
    assert str(path) in str(err.value)
