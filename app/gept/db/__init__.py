"""Database: migrations and status."""
