"""The chaos run of the whole platform (see run.py)."""
