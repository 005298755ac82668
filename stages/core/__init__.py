"""Infrastructure every stage uses: atomic outputs, logging set-up, secret redaction, spreadsheet-safe CSV."""
