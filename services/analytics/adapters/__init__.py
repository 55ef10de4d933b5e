"""Analytics adapters: the Redis aggregates."""
