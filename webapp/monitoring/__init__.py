"""Operations metrics for the hospital's IT team (Prometheus)."""
