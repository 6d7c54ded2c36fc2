"""Reference world models trained on the standard datasets (see README.md)."""
