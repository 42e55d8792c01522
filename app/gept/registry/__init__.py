"""Model registry: list, promote, roll back."""
