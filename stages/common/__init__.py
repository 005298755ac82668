"""Shared helpers for the ftpipe stages: typed params, atomic outputs, model resolution.

Stages import from here and never from each other; `dvc.yaml` lists the files of this package
that each stage depends on.
"""
