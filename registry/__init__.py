"""Model registry: MLflow runs, versions, aliases, the validation gate, promotion and rollback."""
