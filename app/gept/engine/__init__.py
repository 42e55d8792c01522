"""Serve the recommendation engine."""
