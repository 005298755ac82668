"""Going back restores, never retrains (#33 item 2): after a params change and back, every stage up to
finetune comes from DVC's run cache in seconds, finetune included (its reports are cached outputs)."""

from __future__ import annotations

import csv
from pathlib import Path

from flows.dag import read_dag
from flows.runner import run_stage
from flows.summary import _RESULT_TEXT
from tests.conftest import make_corpus, make_pipeline_repo

UP_TO_FINETUNE = ("check", "ingest", "clean", "tokenize", "label", "validate", "drift", "finetune")


def test_run_then_a_changed_epoch_count_then_back_restores_finetune(tiny_bert: Path, tmp_path: Path) -> None:
    root = make_pipeline_repo(
        tmp_path / "repo",
        {
            "ingest": {"source": "data/external/d.csv", "format": "csv"},
            "tokenize": {"model": str(tiny_bert), "max_length": 32, "windows": 1},
            "validate": {"min_rows_per_split": 2, "min_batch_rows": 10},
            "finetune": {"epochs": 2, "learning_rate": 5e-3, "warmup": 0.0},
        },
    )
    with open(root / "data/external/d.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["id", "text", "label"])
        w.writeheader()
        w.writerows({"id": f"r{i}", **r} for i, r in enumerate(make_corpus(40)))
    dag = [s for s in read_dag(root) if s.name in UP_TO_FINETUNE]
    assert [s.name for s in dag] == list(UP_TO_FINETUNE)

    def run_all() -> tuple[dict[str, str], float]:
        """Each stage's status, and finetune's seconds."""
        outcomes = {s.name: run_stage(s, root) for s in dag}
        return {k: o.status for k, o in outcomes.items()}, outcomes["finetune"].seconds

    first, _ = run_all()
    assert first["finetune"] == "ran"
    shipped = (root / "params.yaml").read_text()
    (root / "params.yaml").write_text(shipped.replace("epochs: 2", "epochs: 1"))  # as `-S finetune.epochs=1`
    other, _ = run_all()
    assert other["finetune"] == "ran"
    (root / "params.yaml").write_text(shipped)  # back: nothing to train
    back, seconds = run_all()
    assert back["finetune"] == "restored", back
    assert _RESULT_TEXT["restored"] == "restored from DVC's run cache (not rerun)"
    assert (root / "reports/finetune.json").is_file() and (root / "reports/finetune_curves.png").is_file()
    print(f"going back: {back}; finetune restored in {seconds:.1f} s")
