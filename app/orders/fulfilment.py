"""Staff fulfilment: status moves, tracking, refunds, cancellations that restock."""
