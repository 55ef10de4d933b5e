"""Analytics: aggregates over the log, kept in Redis (ADR 0017)."""
