"""Run inference and write a predictions batch."""
