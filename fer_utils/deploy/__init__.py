"""Deployment: a trained model put to use: inference on images and video, scores on other datasets, TFLite export and quantization, export folders."""
