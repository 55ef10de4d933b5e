"""Analytics: Redis-cached aggregates of the wallet, ledger and tracking events (ADR 0017)."""
