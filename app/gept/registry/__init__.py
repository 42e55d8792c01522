"""Model registry and the model contract shared by training, inference and the engine.

- :mod:`gept.registry.lifecycle`: register, promote (token), rollback (token),
  promote_initial (bootstrap), active_models, advance_lifecycle.
- :mod:`gept.registry.artifacts`: checksummed model files, verified loading.
- :mod:`gept.registry.grid`, :mod:`~gept.registry.features`, :mod:`~gept.registry.history`,
  :mod:`~gept.registry.pricing`: what a model predicts, from which features, at which prices.
  Training and inference both import these (they never import each other).
"""
