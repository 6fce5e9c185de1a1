"""Staff experiment pages: define, start, stop and ship; results with a 95% interval."""

ROUTES: list = []
