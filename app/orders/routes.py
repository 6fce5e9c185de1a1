"""Order pages for members (history, status) and staff (fulfilment, refunds)."""

ROUTES: list = []
API_ROUTES: list = []
