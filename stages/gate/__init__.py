"""The promotion gate: pure code (no MLflow), the checks a candidate must clear to become champion."""
