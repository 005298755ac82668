"""`ftpipe plan` on the tiny model: the table, the refusal (exit 2, naming the change), and the finetune
stage refusing before it reads any data."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from flows.commands import plan as plan_cmd
from flows.commands.cli import build_parser
from flows.commands.plan import plan_for
from stages.model.memplan import BUDGET_ENV, GIB, make_plan, model_shape
from tests.conftest import REPO, run_cmd


def cli(*argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return args.func(args)


@pytest.fixture
def params(tmp_path: Path, tiny_bert: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """params.yaml for the tiny model, big batches (so activations matter), fp32, no budget override."""
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    path = tmp_path / "params.yaml"
    tokenize = {"model": str(tiny_bert), "max_length": 128}
    path.write_text(
        yaml.safe_dump({"tokenize": tokenize, "finetune": {"batch_size": 256, "precision": "fp32"}})
    )
    return path


def test_plan_prints_the_table_for_the_tiny_model(
    params: Path, tiny_bert: Path, tmp_path: Path, capsys
) -> None:
    assert cli("plan", "--params", str(params), "--labels", str(tmp_path / "labels.json")) == 0
    out = capsys.readouterr().out
    shape = model_shape(str(tiny_bert), 2)
    assert f"{shape.params:,} params" in out
    for row in ("weights", "gradients", "AdamW state", "activations", "framework", "per process"):
        assert f"  {row}" in out
    assert "cpu, fp32, ddp x 1 process(es), batch 256 x 128 tokens" in out
    assert "available RAM" in out and ": fits" in out


def test_plan_refuses_over_budget_naming_the_change(
    params: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    labels = str(tmp_path / "labels.json")
    plan = plan_for(str(params), labels)
    ckpt = make_plan(plan.shape, dataclasses.replace(plan.layout, checkpointing=True), plan.budget, "")
    assert ckpt.needed < plan.needed
    monkeypatch.setenv(BUDGET_ENV, f"{(plan.needed + ckpt.needed) / 2 / GIB:.4f}")
    assert cli("plan", "--params", str(params), "--labels", labels) == 2
    out, err = capsys.readouterr()
    assert "DOES NOT FIT" in out
    assert "finetune.activation_checkpointing: true" in err and BUDGET_ENV in err
    assert "finetune.batch_size:" in err


def test_budget_flag_and_a_bad_budget(
    params: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    labels = str(tmp_path / "labels.json")
    assert cli("plan", "--params", str(params), "--labels", labels, "--budget-gb", "0.05") == 2
    assert "(--budget-gb 0.05)" in capsys.readouterr().out
    monkeypatch.setenv(BUDGET_ENV, "plenty")
    assert (
        cli("plan", "--params", str(params), "--labels", labels) == 2
    )  # bad input (#34 item 9), said before torch is imported
    assert f"{BUDGET_ENV} = 'plenty' is not a positive number" in capsys.readouterr().err


def test_finetune_stage_refuses_before_reading_data(params: Path, tmp_path: Path) -> None:
    """The splits folder does not even exist: the plan stops the stage first, naming the fix."""
    missing = tmp_path / "no-such-splits"
    args = ["python", "-m", "stages.finetune", "--params", str(params), "--splits", str(missing)]
    args += ["--labels", str(tmp_path / "labels.json"), "--out", str(tmp_path / "model")]
    args += ["--checkpoints", str(tmp_path / "ckpt"), "--report", str(tmp_path / "finetune.json")]
    args += ["--history", str(tmp_path / "history.json"), "--plot", str(tmp_path / "curves.png")]
    proc = run_cmd(args, cwd=REPO, env={BUDGET_ENV: "0.2"}, check=False, timeout=300)
    assert proc.returncode != 0
    assert "MemoryPlanError" in proc.stderr and "DOES NOT FIT" in proc.stderr
    assert "finetune needs about" in proc.stderr and "budget is 0.20 GiB" in proc.stderr
    assert str(missing) not in proc.stderr  # it never got as far as the data
    assert not (tmp_path / "model").exists() and not (tmp_path / "ckpt").exists()


def test_the_budget_variable_is_spelled_once() -> None:
    """flows/commands/plan.py spells it again (so `ftpipe --help` imports no torch): the two must agree."""
    assert plan_cmd.BUDGET_ENV == BUDGET_ENV
