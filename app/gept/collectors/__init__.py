"""Collectors: fetch market data into PostgreSQL."""
