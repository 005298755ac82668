"""Data concepts shared by the stages: cleaning, text length in words, token windows, the label fold, map and
split, the data profile and its integrity checks, drift between two data profiles."""
