"""Experiments: deterministic assignment, exposures once per subject, conversions once, results."""
