"""Evaluation: metrics, cross-dataset scores and explanations."""
