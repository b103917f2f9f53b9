"""Deployment: TFLite export and quantization, export folders, inference on images and video."""
