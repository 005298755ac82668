"""docs/your-data.md, run as written: your CSV -> `ftpipe init` -> `ftpipe run` -> your model as champion ->
`ftpipe predict`.

Every ```bash block of the walkthrough runs in order, with bash, in a fresh copy of the repository (the
real stages and dvc.yaml, the shipped params.yaml byte for byte), with real DVC, Prefect and MLflow. A
```text block that directly follows a ```bash block is that block's exact output, and is compared.
The test changes only what a tiny run needs, the ways the doc's commands allow:
- `ftpipe run` gets `-S` overrides (for that run only, in `dvc exp run -S` syntax: params.yaml is put
  back byte for byte after it, and dvc.lock records the values the run used): a tiny BERT built from
  the CSV's texts instead of MiniLM, 32 tokens, one epoch, fp32, 16 verify rows, and a gate floor of 0
  (a tiny model after one epoch cannot reach macro-F1 0.9, and the first version must become champion
  for `ftpipe predict` to load it);
- MLFLOW_TRACKING_URI names the copy's `mlflow.db`: the installed `ftpipe` would otherwise use the
  `mlflow.db` of the checkout it was installed from (a user's copy is that checkout);
- PREFECT_API_URL names the session's test Prefect server: `ftpipe run` would otherwise start a
  temporary one (about 10 s here); `ftpipe predict` uses no Prefect.
About 60 s on 2 busy cores (plus the Prefect server, shared by the session's flow tests), so not `slow`.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, build_tiny_bert, make_pipeline_repo

DOC = REPO / "docs" / "your-data.md"
MODEL = "support-tickets"
TINY_RUN = (
    "tokenize.max_length=32",
    "tokenize.windows=1",
    "finetune.epochs=1",
    "finetune.learning_rate=5e-3",
    "finetune.warmup=0",
    "finetune.precision=fp32",
    "register.verify_rows=16",
    "register.retries=1",
    "register.gate.min_primary=0.0",
    "register.gate.baseline_tolerance=1.0",
    "register.gate.baseline_margin=-1.0",
)
FENCE = re.compile(r"^```(\w*)\n(.*?)^```[ \t]*$", re.M | re.S)


def walkthrough(text: str) -> list[tuple[str, str | None]]:
    """The doc's bash blocks in order, each with the ```text block directly after it (its output), if any."""
    blocks = [(m.group(1), m.group(2), m.start(), m.end()) for m in FENCE.finditer(text)]
    steps: list[tuple[str, str | None]] = []
    for i, (lang, body, _, end) in enumerate(blocks):
        if lang != "bash":
            continue
        nxt = blocks[i + 1] if i + 1 < len(blocks) else None
        follows = nxt is not None and nxt[0] == "text" and not text[end : nxt[2]].strip()
        steps.append((body, nxt[1] if follows and nxt else None))
    return steps


def with_tiny_run(script: str, tiny_bert: Path) -> str:
    """The script with the tiny run's `-S` overrides added to its `ftpipe run` line."""
    extra = " ".join(f"-S {s}" for s in (f"tokenize.model={tiny_bert}", *TINY_RUN))
    return re.sub(r"^ftpipe run$", f"ftpipe run {extra}", script, flags=re.M)


def test_the_walkthrough_runs_as_written(prefect_harness, tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL

    doc = DOC.read_text(encoding="utf-8")
    steps = walkthrough(doc)
    assert len(re.findall(r"^ftpipe run$", doc, flags=re.M)) == 1, "one plain `ftpipe run` line to extend"
    assert sum(s.count("ftpipe predict ") for s, _ in steps) == 1
    root = make_pipeline_repo(tmp_path / "repo", {})
    shutil.copy(REPO / "params.yaml", root / "params.yaml")  # as shipped: comments, BBC model name
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
    }

    outputs = []
    for script, expected in steps:
        if re.search(r"^ftpipe run$", script, flags=re.M):
            with open(root / "data" / "external" / "tickets.csv", newline="", encoding="utf-8") as fh:
                texts = [r["message"] for r in csv.DictReader(fh)]
            script = with_tiny_run(script, build_tiny_bert(tmp_path / "tiny-bert", texts))
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, (
            f"{script}\nfailed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
        if expected is not None:
            assert proc.stdout.strip("\n") == expected.strip("\n"), f"the doc's output of:\n{script}"
        outputs.append(proc.stdout)

    from mlflow import MlflowClient

    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    assert [m.name for m in client.search_registered_models()] == [MODEL]  # nothing under ftpipe-bbc-news
    assert "Gate: **passed: promoted to champion**" in "".join(outputs)
    served = next(out for (script, _), out in zip(steps, outputs, strict=True) if "ftpipe predict " in script)
    assert f"`models:/{MODEL}@champion`" in served
    with open(root / "predictions.csv", newline="", encoding="utf-8") as fh:
        predictions = list(csv.DictReader(fh))
    assert [p["id"] for p in predictions] == ["1", "2", "3"]
    assert {p["label"] for p in predictions} <= {"account", "billing", "delivery"}
