"""The pure parts of the speed benchmarks: compile's break-even, the finetune FLOP floor, onnx_compare
without ONNX Runtime installed, and bench.run's command line."""

from __future__ import annotations

import pytest

import bench.onnx_compare as onnx_compare
from bench.compile import _break_even
from bench.gpu_check import train_flops_per_sample
from bench.run import BENCHES, finetune_flops
from bench.run import main as run_main


def test_break_even_counts_items_until_compile_time_is_paid_back() -> None:
    # 10 items/s eager, 20 compiled: 0.05 s saved per item, so 30 s of compile are paid after 600 items
    assert _break_even(30.0, 10.0, 20.0) == 600
    assert _break_even(30.0, 10.0, 10.0) is None  # no faster: never pays
    assert _break_even(30.0, 11.1, 9.7) is None  # slower (what training measured here): never pays
    assert _break_even(-1.0, 10.0, 20.0) == 0  # compiled even started faster


def test_finetune_flops_counts_training_and_every_validation_window() -> None:
    shape = (6 * (4 * 384 * 384 + 2 * 384 * 1536), 6, 384)
    one_epoch = (
        1483 * train_flops_per_sample(*shape, 112.5) + 1288 * train_flops_per_sample(*shape, 110.0) / 3
    )
    assert finetune_flops(shape, 1483, 5, 112.5, 1288, 110.0) == pytest.approx(5 * one_epoch)
    # the default BBC run is about 73 TFLOP: about 490 s at this machine's 150 GFLOP/s fp32 peak
    assert finetune_flops(shape, 1483, 5, 112.5, 1288, 110.0) / 1e12 == pytest.approx(73, rel=0.05)


def test_onnx_compare_without_onnx_runtime_says_what_to_install_and_exits_0(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(onnx_compare, "NEEDS", ("onnxruntime", "ftpipe_no_such_package"))
    assert onnx_compare.main([]) == 0
    said = capsys.readouterr().out
    assert "ftpipe_no_such_package" in said and "nothing measured" in said
    assert onnx_compare.INSTALL in said


def test_bench_run_help_lists_the_benchmarks_and_an_unknown_one_is_named(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`python -m bench.run --help` used to fail with KeyError: '--help' (every argument was taken for a
    benchmark's name), as did a misspelt name."""
    with pytest.raises(SystemExit) as exc:
        run_main(["--help"])
    assert exc.value.code == 0
    said = capsys.readouterr().out
    assert all(name in said for name in BENCHES)
    with pytest.raises(SystemExit) as exc:
        run_main(["data", "trian_step"])
    assert exc.value.code == 2
    assert "no benchmark named trian_step" in capsys.readouterr().err
