"""Ledger use cases, one per module. Each receives its dependencies; bootstrap wires them."""
