"""Runnable examples of the integrations, each with its own tests (run by the suite)."""
