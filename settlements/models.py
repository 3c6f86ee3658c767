"""Settlements (SPEC §3) arrive with the settlements issue."""
