"""How the outside reaches the ledger: FastStream subscribers (processes) and HTTP routes."""
