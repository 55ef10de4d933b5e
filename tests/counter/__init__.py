"""A test-only service built from nothing but the engine's public pieces: counters that move
amounts between each other with a two-partition saga (debit here, credit there, a refund when
the credit is refused or cannot be read, a deadline when it never answers). See
tests/e2e/test_counter_saga.py and docs/adr/0012."""
