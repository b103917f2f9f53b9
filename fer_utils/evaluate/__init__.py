"""Evaluation: the metrics a run is scored with and the class activation maps that explain a prediction."""
