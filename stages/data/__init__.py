"""Data concepts shared by the data stages: text length in words, token windows, drift between two data profiles."""
