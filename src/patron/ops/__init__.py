"""Operations: tracing ids, health and readiness, Prometheus metrics."""
