"""Subcommand groups of the CLI. Each module exposes `register(subparsers)` and imports nothing heavy."""
