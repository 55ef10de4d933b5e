"""Health, readiness and Prometheus metrics for every process."""
