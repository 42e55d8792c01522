"""Train CatBoost models."""
