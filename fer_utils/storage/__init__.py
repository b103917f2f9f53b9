"""Storage: atomic writes, locks, outputs that never overwrite a result, and the names of a run folder's files."""
