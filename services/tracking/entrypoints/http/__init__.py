"""The tracking routes, mounted by the gateway."""
