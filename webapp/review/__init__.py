"""The review queue, claims, doctors' labels and the review and prediction pages."""
