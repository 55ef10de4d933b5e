"""The engine every service runs on: partition owners, handlers by message type, replies,
due-time commands, projections and audits. See docs/adr/0012 for the worked saga example."""
