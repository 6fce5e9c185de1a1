"""The shop: catalog, cart, checkout, reviews, wishlist, collections (DESIGN section 7)."""
