"""Per-operation figures, the log line, Prometheus metrics and recent activity."""
