"""Turning query results into what a person reads (rich) or a program reads (JSON, CSV)."""
