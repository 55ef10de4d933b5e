"""Process entry of the gateway."""
