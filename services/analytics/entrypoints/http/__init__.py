"""The analytics routes."""
