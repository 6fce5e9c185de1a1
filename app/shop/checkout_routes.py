"""Cart and one-page checkout pages; POST /api/v1/checkout."""

ROUTES: list = []
API_ROUTES: list = []
