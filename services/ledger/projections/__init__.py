"""Read models built from `ledger.events` only: balances and the entry list."""
