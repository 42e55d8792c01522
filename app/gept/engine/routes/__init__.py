"""The engine's routers: recommendations, items (predictions, search, history, models), health."""
