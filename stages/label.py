"""label: canonicalise labels, quarantine unknown ones, write labels.json and a stable, grouped split.

    python -m stages.label --tokenized data/processed/tokenized --out data/processed/splits \
        --labels data/processed/labels.json --quarantine reports/label_quarantine.jsonl \
        --ledger data/processed/split_ledger.parquet --report reports/label.json

Labels are case- and whitespace-folded and mapped through `label.aliases`; when `label.labels` is set,
rows with any other label are quarantined (with the reason and the count in the report) and labels.json
lists exactly the declared classes (a declared class without rows is left for `validate` to stop).

The split (`label.split: stable`, the default) is a pure function of each near-duplicate group's key
(the `group` column from clean) and `label.seed`: a keyed hash maps the key to [0, 1), compared with
the split fractions. Adding or removing rows therefore never moves any other row, which is what
scheduled retraining needs (a champion is never scored on rows that moved into its test split). The
ledger of the previous run's assignment (a persistent, uncached output) lets the report count, per
split, the rows that are new and the rows that changed side (0 unless the seed or fractions changed).
`label.split: random` keeps the earlier seeded `train_test_split` (it reshuffles when data changes).

Under `label.task: multi_label` each row holds a label set: every label of it is folded as above, a label
outside `label.labels` or on fewer than `label.min_class_rows` rows is removed from the sets (the
report's `removed_labels`), and a row left with no label is quarantined with the reason. The splits'
`label` column is then a list of class ids (`List(ClassLabel)`); docs/your-data.md has the contract.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from datasets import Dataset, load_from_disk

from stages.config.label import LabelParams
from stages.config.params import load_section
from stages.config.paths import add_path_args
from stages.core.io import atomic_dir, read_table, write_json, write_jsonl, write_table
from stages.core.logs import setup_logging
from stages.data.label_map import write_label_map
from stages.data.labels import canonicalise, removed_labels
from stages.data.split import label_report, ledger_of, movement, read_columns, split_datasets, split_groups
from stages.reports.label import LabelReport


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    add_path_args(ap, "label")
    args = ap.parse_args(argv)
    log = setup_logging("label")
    p = load_section("label", LabelParams, args.params)
    ds = load_from_disk(args.tokenized)  # memory-mapped: the token ids are read batch by batch, once
    assert isinstance(ds, Dataset)
    columns = read_columns(ds)
    kept, quarantine, names = canonicalise(columns, p)
    splits = split_groups(kept, p)
    ledger = Path(args.ledger)
    moves = movement(splits, read_table(ledger) if ledger.is_file() else None)
    with atomic_dir(args.out) as tmp:
        work = tmp / ".work"  # the relabelled splits before save_to_disk copies them; gone after
        split_datasets(ds, splits, names, work).save_to_disk(str(tmp))
        shutil.rmtree(work)
    write_label_map(args.labels, names)
    write_jsonl(args.quarantine, quarantine)
    write_table(ledger, ledger_of(splits))
    report = label_report(splits, names, quarantine, p, moves)
    if p.task == "multi_label":  # labels taken out of the sets (too few rows, or not declared) and why
        report |= {"task": p.task, "removed_labels": removed_labels(columns, p)}
    write_json(args.report, LabelReport.model_validate(report).dump())  # the summary reads it
    log.info("classes %s; rows %s; quarantined %d", names, report["rows"], len(quarantine))
    if moves["previous_run"]:
        log.info("since the previous run: new %s, changed side %s", moves["new"], moves["changed_side"])


if __name__ == "__main__":
    main()
