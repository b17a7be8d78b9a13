"""Audits: gates as SQL files, evaluated against one run, giving a verdict with reasons."""
