"""Pure ledger rules: no I/O, no clock, no framework. Everything here is tested directly."""
