"""Configuration: every params class (one per params.yaml section) and the table of each stage's paths."""
