"""Training: the config, the input pipeline, the fit, the recipes, run folders and diagnoses."""
