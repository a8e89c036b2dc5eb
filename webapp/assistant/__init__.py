"""The chat assistant beside each prediction: threads in the database, facts from the platform."""
