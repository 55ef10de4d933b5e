"""The HTTP gateway: turns requests into commands and answers reads from read models."""
