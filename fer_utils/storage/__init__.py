"""Storage: atomic writes, locks and outputs that never overwrite a result."""
