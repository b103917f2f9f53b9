"""Data: the corpora's indexes, downloads and archives, stills and clips read from disk, manifests, splits and duplicate audits."""
