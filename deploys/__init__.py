"""pyinfra deploys: `pyinfra inventory/<env>.py deploys/ampere.py` (and hydra.py)."""
