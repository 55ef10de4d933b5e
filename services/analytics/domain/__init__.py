"""Analytics rules, pure: what each event adds to the aggregates, and the summary."""
