"""SQL for the ledger's tables; handlers receive these stores, the domain never sees SQL."""
