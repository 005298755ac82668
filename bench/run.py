"""Benchmarks for ftpipe's speed and memory targets (see bench/README.md).

.venv/bin/python -m bench.run [data] [train_step] [noop_repro]
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def bench_data() -> dict[str, Any]:
    """The four data-stage cores on the builtin BBC News corpus."""
    from stages.clean import CleanParams, clean_table
    from stages.ingest import IngestParams, ingest
    from stages.label import LabelParams, canonicalise, split_groups
    from stages.tokenize import TokenizeParams, load_tokenizer, tokenize_table

    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    raw, _, _ = ingest(IngestParams())
    t1 = time.perf_counter()
    clean, _, _ = clean_table(raw, CleanParams())
    t2 = time.perf_counter()
    tp = TokenizeParams()
    ds, _ = tokenize_table(clean, tp, load_tokenizer(tp))
    t3 = time.perf_counter()
    kept, _, _ = canonicalise(ds.select_columns(["id", "text", "label", "group"]).to_pandas(), LabelParams())
    split_groups(kept, LabelParams())
    t4 = time.perf_counter()
    for name, a, b, n in [
        ("ingest", t0, t1, len(raw)),
        ("clean", t1, t2, len(raw)),
        ("tokenize", t2, t3, len(clean)),
        ("label", t3, t4, len(clean)),
    ]:
        out[f"{name}_s"] = round(b - a, 3)
        out[f"{name}_rows_per_s"] = round(n / max(b - a, 1e-9), 1)
    out["total_s"] = round(t4 - t0, 3)
    out["target_total_s"] = 30
    out["pass"] = out["total_s"] < 30
    return out


def bench_train_step(steps: int = 6, batch: int = 16, seq: int = 128) -> dict[str, Any]:
    """Samples/s of full-parameter AdamW steps on the packaged MiniLM with a 5-class head."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from stages.common.models import resolve_model

    torch.manual_seed(0)
    out: dict[str, Any] = {"batch": batch, "seq": seq, "threads": torch.get_num_threads()}
    for precision in ("fp32", "bf16"):
        model = AutoModelForSequenceClassification.from_pretrained(
            resolve_model("builtin:minilm-l6"), num_labels=5
        )
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=5e-5)
        ids = torch.randint(1000, 20000, (batch, seq))
        labels = torch.randint(0, 5, (batch,))

        def step(model=model, opt=opt, ids=ids, labels=labels, bf16=precision == "bf16") -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
            loss.backward()
            opt.step()
            opt.zero_grad()

        step()  # warm-up
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        dt = time.perf_counter() - t0
        out[f"{precision}_samples_per_s"] = round(steps * batch / dt, 2)
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out["pass"] = out["fp32_samples_per_s"] >= 10 and out["peak_rss_mib"] < 4096
    return out


def bench_noop_repro() -> dict[str, Any]:
    """Wall time of `dvc repro evaluate` when nothing changed (best of three).

    `register` is left out: it is `always_changed` (the registry is external state) and checks MLflow.
    """
    dvc = str(Path(sys.executable).parent / "dvc")
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        proc = subprocess.run([dvc, "repro", "evaluate"], cwd=ROOT, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
    up_to_date = "up to date" in proc.stdout
    return {"best_s": round(min(times), 3), "up_to_date": up_to_date, "pass": up_to_date and min(times) < 3}


BENCHES = {"data": bench_data, "train_step": bench_train_step, "noop_repro": bench_noop_repro}


def main(argv: list[str] | None = None) -> None:
    names = (argv if argv is not None else sys.argv[1:]) or list(BENCHES)
    results = {}
    for name in names:
        results[name] = BENCHES[name]()
        print(f"{name}: {json.dumps(results[name])}", flush=True)
    path = ROOT / "bench" / "results.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**old, **results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
