"""Strawberry GraphQL glue for the tiered cache."""
