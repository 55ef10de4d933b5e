"""PostgreSQL plumbing: the asyncpg pool, per-service migrations, LISTEN/NOTIFY helpers."""
