"""Deployment: inference on images and video, cross-dataset scores, TFLite export and quantization, export folders."""
