"""Insight: the staff dashboard, campaign funnels and creator analytics (issue 8)."""
