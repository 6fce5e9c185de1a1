"""The staff dashboard, campaign funnels and creator analytics pages."""

ROUTES: list = []
