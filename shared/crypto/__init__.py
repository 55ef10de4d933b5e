"""Cryptography the platform shares: sealing personal data with a per-user key."""
