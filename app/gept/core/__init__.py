"""Core: configuration, the error tree, logging and the clock. Imports nothing else of gept."""
