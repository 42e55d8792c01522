"""The lab's differences from production, as data only (no lab branches in the deploys).

The lab hosts are containers on this machine: no GPU, no public image registry, the market
simulator (run on Ampere by ``make demo``) stands in for the OSRS Wiki, and secrets are
generated into the lab's state directory.
"""

from gept.lab.image import lab_base_image
from gept.lab.topology import LabTopology

secrets_dir = str(LabTopology.from_env().state_dir / "secrets")
generate_secrets = True
# The engine's TLS certificate comes from a lab CA in secrets_dir (deploys/tls.py); tests
# and `gept web env` trust engine-tls-ca.crt from there.
engine_tls_lab_ca = True
# The web app in the lab is a stand-in on Ampere (tests/lab/test_web_lab.py starts it);
# the price-drop monitor runs every 10 s instead of 300 so the test need not wait.
web_alerts_url = "http://127.0.0.1:8099/api/webhooks/alerts"
price_drop_monitor_interval = 10

task_type = "CPU"
gpu_devices = ""
# Grafana exists only on public registries: its compose service is rendered and validated
# (`docker-compose config`) but not started in the lab.
grafana_enabled = False
wiki_base_url = "http://127.0.0.1:8090/api/v1/osrs"
wiki_user_agent = "gept-lab/0.1 (lab@gept.example)"
# The collectors image builds FROM the lab's own Debian base (no public registry here).
collectors_base_image = lab_base_image()
# The lab logs in as root: no sudo wrapper around every command (operations that run as
# another user still pass _sudo/_sudo_user themselves).
_sudo = False
# The backup repository lives on another lab host than the databases: hydra runs
# pgBackRest's TLS server (production: an S3 bucket, group_data/production.py).
backup_repo_host = "hydra"
