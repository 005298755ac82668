"""validate: profile the splits and stop the DAG before training when the data is broken.

    python -m stages.validate --splits data/processed/splits --labels data/processed/labels.json \
        --profile data/processed/profile.json --report reports/data_profile.json

Half an hour of training should not be the first thing to notice that a batch lost a class, that its
texts were cut to a few characters by a broken export, or that it is in a language the tokenizer cannot
read. This stage reads only the pipeline's own data (the labelled splits and labels.json), never the
registry, and writes:

- `reports/data_profile.json`: per split and class, rows, text length quantiles in characters and
  tokens, the share of texts truncated, the share of unknown tokens, the empty and near-duplicate rates
  and the top n-grams; per batch file, rows and median length; and every integrity check with its figure,
  its limit and its outcome. It is written even when a check fails, so the failure can be read.
- `data/processed/profile.json`, only when every check passes: the compact profile that register stores
  with each model version (class counts, length histograms on fixed bins, a stable sample of texts) so a
  later run can measure drift against the champion's data.

A failing check stops the stage with one message per problem naming the class, split or batch file, the
figure and the `validate.*` (or `label.*`) key to change.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from stages.config.params import load_section
from stages.config.paths import add_path_args
from stages.config.validate import ValidateParams
from stages.core.io import write_json
from stages.core.logs import setup_logging
from stages.data.integrity import ValidateError, failure_message, validate
from stages.data.label_map import read_label_names
from stages.data.profile import load_frames
from stages.reports.validate import DataProfileReport


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    add_path_args(ap, "validate")
    args = ap.parse_args(argv)
    log = setup_logging("validate")
    p = load_section("validate", ValidateParams, args.params)
    classes = read_label_names(args.labels)
    profile, compact = validate(load_frames(args.splits), classes, p)
    Path(args.profile).unlink(missing_ok=True)  # never leave an old profile beside a failed check
    write_json(args.report, DataProfileReport.model_validate(profile).dump())  # the summary reads it
    if compact is None:
        raise ValidateError(failure_message(profile, args.report))
    write_json(args.profile, compact.dump())  # drift and register read it (stages/reports/profile.py)
    log.info("profile: %s", profile["headline"])


if __name__ == "__main__":
    main()
