"""Faces: detecting and cropping faces, the crop spec, preprocessing a corpus, and the synthetic sample animated from real faces."""
