"""HTTP pieces every service's routes share: callers, domain errors, fast JSON responses."""
