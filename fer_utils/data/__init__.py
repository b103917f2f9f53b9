"""Data: the corpora's indexes, downloads and archives, manifests, splits and duplicate audits."""
