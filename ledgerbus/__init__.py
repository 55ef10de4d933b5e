"""The `ledgerbus` command: run processes, migrate, create topics, develop, audit, rebuild."""
