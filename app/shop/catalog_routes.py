"""Catalog pages: /shop, product pages, staff product editor; /api/v1/products."""

ROUTES: list = []
API_ROUTES: list = []
