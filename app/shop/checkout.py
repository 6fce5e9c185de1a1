"""Checkout: stock held atomically, card saved then charged on-session, paid exactly once."""
