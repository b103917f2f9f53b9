"""Faces: reading images and video, detecting and cropping faces, the crop spec, preprocessing a corpus."""
