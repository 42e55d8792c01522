"""Helpers for tests and benchmarks: a throwaway PostgreSQL from the installed binaries."""
