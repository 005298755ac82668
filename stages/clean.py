"""clean: strip markup and noise, normalise Unicode, fold whitespace, reject unusable rows, collapse duplicates.

    python -m stages.clean --raw data/raw --out data/interim --report reports/clean.json

Every rule is a param of the `clean` section. Rejected rows go to `rejects.jsonl` (the quarantine) with
their reason; the stage fails (naming the top reasons) when more than `clean.max_reject_fraction` of rows
are rejected. An exact copy of a kept row is not a reject: it is dropped, counted as `duplicates` in the
report and quarantined with reason `duplicate` (every input row is kept, rejected or a duplicate).
Each kept row gets a `group` key (case, punctuation and spacing removed) that the label stage uses to
keep near-duplicates on one side of the split.

Length is counted in words, each Chinese, Japanese or Korean character one word (stages/data/words.py),
so `min_words` means the same in every script; `max_chars` is a size guard in characters. A length
limit that removes more than `warn_class_fraction` of one class is listed in the report
(`length_warnings`) and logged, though the run goes on. Two copies of a text conflict only when their
labels differ after the fold the label stage applies (`label.lowercase`, `label.aliases`, read from the
label section), so "Sport" and "sport" on one text are a duplicate.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from stages.config.clean import CleanParams
from stages.config.label import LabelParams
from stages.config.params import load_section
from stages.config.paths import add_path_args
from stages.core.io import atomic_dir, read_table, write_json, write_jsonl, write_table
from stages.core.logs import setup_logging
from stages.data.cleaning import clean_table
from stages.reports.clean import CleanReport


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    add_path_args(ap, "clean")
    args = ap.parse_args(argv)
    log = setup_logging("clean")
    p = load_section("clean", CleanParams, args.params)
    labels = load_section("label", LabelParams, args.params)  # how label will fold them (conflicts)
    df = read_table(Path(args.raw) / "rows.parquet")
    out, rejects, report = clean_table(df, p, labels)
    with atomic_dir(args.out) as tmp:
        write_table(tmp / "clean.parquet", out)
        write_jsonl(tmp / "rejects.jsonl", rejects)
    write_json(args.report, CleanReport.model_validate(report).dump())  # the summary reads it
    log.info(
        "%d -> %d rows; %d exact duplicates dropped; rejected %s",
        report["rows_in"],
        report["rows_out"],
        report["duplicates"],
        report["reject_reasons"],
    )
    for w in report["length_warnings"]:
        log.warning("%s", w["message"])


if __name__ == "__main__":
    main()
