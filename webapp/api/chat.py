"""The assistant over the API (filled by the explanations issue)."""
