"""Health tracking (ADR 0022)."""
