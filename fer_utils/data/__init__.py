"""Data: the corpora's indexes and downloads, stills and clips read from disk, manifests, splits, duplicate audits."""
