"""Event and command contracts: the only place where message shapes are defined.

Services import these models and never each other's domain code. Every model is a frozen
pydantic v2 model that forbids unknown fields, so a typo at any edge is an error, not data.
"""
