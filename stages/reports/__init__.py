"""Typed models of the JSON reports that the stages write and `flows/summary.py` reads.

One module per report, named after the stage that writes it (`evaluate` -> reports/metrics.json,
`validate` -> reports/data_profile.json, ...). The writer validates its report with the model before
writing `model.dump()`, and the summary loads it with `Model.model_validate(...)` and reads attributes,
so a renamed key fails where it is written (or is named as unreadable in the summary) instead of
silently blanking a line of the summary. Each model types the fields the summary reads; every other key
is kept as an extra, so the written JSON is byte for byte what the stage built.

`profile.py` types one data file that is no report: data/processed/profile.json, validate's compact
profile that register stores with each version and drift compares (read by more than the summary).
"""
