"""A/B experiments: deterministic assignment, exposures, conversions, results (issue 8)."""
