"""Privacy: export all my data, delete my account, consents, sign-in by email link."""

ROUTES: list = []
