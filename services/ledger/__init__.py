"""The credit ledger: per-app operation catalogs, nonce-idempotent entries, balances >= 0."""
