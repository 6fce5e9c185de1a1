"""Reviews, wishlist and collections pages; /api/v1/collections."""

ROUTES: list = []
API_ROUTES: list = []
