"""Dashboard numbers: per-day series, funnels, creator analytics."""
