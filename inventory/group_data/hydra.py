"""Hydra: GPU training and primary inference, writing to Ampere through an SSH tunnel."""

app_root = "/opt/gept/app"
inference_role = "primary"

# CatBoost: "GPU" on the real Hydra; the lab and CPU-only hosts set "CPU".
task_type = "GPU"
gpu_devices = "0"

# The tunnel: Hydra 127.0.0.1:15432 -> Ampere 127.0.0.1:5432 over SSH.

tunnel_target_host = "ampere"       # address of Ampere as Hydra sees it
tunnel_target_port = 22
