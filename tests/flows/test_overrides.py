"""`ftpipe run -S key=value` holds for that run only: params.yaml is byte-identical afterwards.

It used to be written through DVC's `modify_yaml`, which reformatted unrelated lines (`null` became empty,
`[cp1252]` a block list, the cron string lost its quotes) and kept the override: a smoke run's
`-S finetune.epochs=1` silently became next Monday's scheduled run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from flows.commands.cli import build_parser
from flows.params import BACKUP_FILE, apply_overrides, load_retrain_params, overridden_params

REPO = Path(__file__).resolve().parents[2]

# lines DVC's writer reformatted: a null, a flow list, a quoted cron string, comments
PARAMS = """\
# the tiny pipeline's params
train:
  factor: 1       # how many times train repeats its input
  note: null
  encodings: [cp1252]

retrain:
  schedule_cron: "0 3 * * 1"
  timezone: UTC
"""


def cli(*argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return args.func(args)


def lock_params(repo: Path) -> dict:
    return yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["train"]["params"]["params.yaml"]


def test_an_override_holds_for_its_run_only(prefect_harness, tiny_repo: Path, capsys) -> None:
    params = tiny_repo / "params.yaml"
    params.write_text(PARAMS)
    before = params.read_bytes()
    assert (
        cli("run", "--root", str(tiny_repo), "-S", "train.factor=3", "-S", "retrain.timezone=Europe/Paris")
        == 0
    )
    out = capsys.readouterr().out
    assert params.read_bytes() == before  # every byte, comments and quotes included
    assert lock_params(tiny_repo) == {"train.factor": 3}  # dvc.lock: what the model was trained with
    assert (tiny_repo / "model.txt").read_text().count("train") == 3
    assert "`train.factor`: 1 -> 3" in out and "`retrain.timezone`: 'UTC' -> 'Europe/Paris'" in out
    assert "for this run only" in out
    # a scheduled run reads the file: the manual run's overrides are not inherited
    assert load_retrain_params(tiny_repo).timezone == "UTC"
    assert yaml.safe_load(params.read_text())["train"]["factor"] == 1
    assert not (tiny_repo / BACKUP_FILE).exists()

    # the next plain run trains back with the file's values
    from flows.retrain import retrain

    s = retrain(root=str(tiny_repo))
    assert {st["name"]: st["status"] for st in s["stages"]}["train"] == "ran"
    assert lock_params(tiny_repo) == {"train.factor": 1}


def test_a_failed_run_puts_params_back(prefect_harness, tiny_repo: Path, capsys) -> None:
    params = tiny_repo / "params.yaml"
    params.write_text(PARAMS)
    before = params.read_bytes()
    (tiny_repo / "data.txt").write_text("alpha\nFAIL\n")
    assert cli("run", "--root", str(tiny_repo), "-S", "train.factor=3") == 1
    assert params.read_bytes() == before
    capsys.readouterr()


def test_the_round_trip_writer_changes_only_the_overridden_lines(tiny_repo: Path) -> None:
    params = tiny_repo / "params.yaml"
    params.write_text(PARAMS)
    with overridden_params(
        tiny_repo, ["train.factor=2", "+train.extra=[a, b]", "~train.encodings"]
    ) as changes:
        during = params.read_text()
        assert changes[0] == {"file": "params.yaml", "key": "train.factor", "old": 1, "new": 2}
        assert changes[2]["new"] == "(absent)"
    assert params.read_text() == PARAMS
    expected = PARAMS.replace("factor: 1 ", "factor: 2 ").replace("  encodings: [cp1252]\n", "")
    assert during.startswith(expected.split("retrain:")[0].rstrip("\n"))
    assert 'schedule_cron: "0 3 * * 1"' in during and "note: null" in during and "cp1252" not in during
    assert yaml.safe_load(during)["train"]["extra"] == ["a", "b"]


HOLD = """\
import sys, time
from flows.params import overridden_params
with overridden_params(sys.argv[1], ["train.factor=7"]):
    print("overridden", flush=True)
    time.sleep(120)
"""


def test_ctrl_c_and_kill_9_leave_params_as_they_were(tiny_repo: Path) -> None:
    """Ctrl-C unwinds through the `finally`; SIGKILL has none, so the next run puts the file back."""
    params = tiny_repo / "params.yaml"
    params.write_text(PARAMS)
    before = params.read_bytes()
    for sig in (signal.SIGINT, signal.SIGKILL):
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(tiny_repo)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
            # Ctrl-C as a terminal gives it: a parent that ignores SIGINT (a pytest-xdist worker) would
            # otherwise pass the ignoring on, and Python then installs no KeyboardInterrupt
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "overridden"
        assert b"factor: 7" in params.read_bytes()
        os.kill(proc.pid, sig)
        proc.wait(timeout=30)
        if sig == signal.SIGKILL:
            assert b"factor: 7" in params.read_bytes() and (tiny_repo / BACKUP_FILE).exists()
            with overridden_params(tiny_repo, []):  # what the next run does first
                pass
        assert params.read_bytes() == before, sig
        assert not (tiny_repo / BACKUP_FILE).exists()
    # a file edited by hand after the kill is left alone
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tiny_repo)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "overridden"
    proc.kill()
    proc.wait(timeout=30)
    edited = params.read_bytes().replace(b"factor: 7", b"factor: 9")
    params.write_bytes(edited)
    time.sleep(0.01)
    with overridden_params(tiny_repo, []):
        pass
    assert params.read_bytes() == edited


def test_after_a_kill_9_the_next_run_with_new_overrides_puts_params_back(tiny_repo: Path) -> None:
    """`ftpipe run` first tries its `-S` values (`apply_overrides(keep=False)`); that trial must put back what
    a killed run left, not take the killed run's overridden bytes for the original."""
    params = tiny_repo / "params.yaml"
    params.write_text(PARAMS)
    before = params.read_bytes()
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tiny_repo)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "overridden"
    proc.kill()
    proc.wait(timeout=30)
    assert b"factor: 7" in params.read_bytes()
    apply_overrides(tiny_repo, ["train.factor=8"], keep=False)  # what `ftpipe run -S ...` does first
    assert params.read_bytes() == before
    assert not (tiny_repo / BACKUP_FILE).exists()
    with overridden_params(tiny_repo, ["train.factor=3"]) as applied:
        assert applied[0]["old"] == 1  # the file's own value, not the killed run's 7
    assert params.read_bytes() == before
