"""The served model's code: shipped with every registered version and run without the ftpipe repository.

Nothing here imports another ftpipe module (an import-linter contract in pyproject.toml keeps it so):
MLflow copies these files into the model, and `textclf.py` loads its siblings by path.
"""
