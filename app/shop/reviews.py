"""Reviews by verified buyers, ratings, and the review-request email job."""
