"""Kafka plumbing shared by every service: topics, producer, dead letters, partition owners."""
