"""The analytics audit and rebuild: the aggregates recomputed from the log."""
