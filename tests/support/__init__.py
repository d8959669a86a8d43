"""Helpers the test packages share; no conftest imports another's private names."""
