"""Notice and action (the EU Digital Services Act): reports, decisions with a statement of
reasons, one appeal, and the staff queue with its trail."""
