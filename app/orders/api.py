"""Orders JSON API: GET /api/v1/orders/{number}, staff PATCH and refunds."""

ROUTES: list = []
API_ROUTES: list = []
