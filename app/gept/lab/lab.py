"""The lab as one object: ``up``, ``down``, ``status``, ``ssh``, ``run``.

Example:
    >>> lab = Lab.from_env()                       # doctest: +SKIP
    >>> report = lab.up()                          # builds/caches the image, starts hosts
    >>> lab.run("hydra", "getent hosts ampere").returncode    # doctest: +SKIP
    0
    >>> lab.down()                                 # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gept.core.errors import Failed
from gept.lab import agent
from gept.lab import hosts as lab_hosts
from gept.lab.engine import DockerEngine, file_lock
from gept.lab.image import BuildReport, ImageRecipe, ensure_image, image_exists, remove_images
from gept.lab.keys import ensure_keypair, write_known_hosts, write_ssh_config
from gept.lab.proc import run
from gept.lab.state import clear_state, read_state, write_state
from gept.lab.topology import LabTopology

log = logging.getLogger(__name__)


@dataclass
class Lab:
    """One lab (one name prefix) on this machine."""

    topology: LabTopology
    engine: DockerEngine

    @classmethod
    def from_env(cls) -> Lab:
        """The lab described by the ``GEPT_LAB_*`` environment (see `topology`)."""
        return cls(LabTopology.from_env(), DockerEngine.default())

    @property
    def recipe(self) -> ImageRecipe:
        """The image recipe (with this machine's extra trusted CAs)."""
        return ImageRecipe.default(self.topology.extra_ca_dir, self.topology.mirror)

    @property
    def work_root(self) -> Path:
        """Where debootstrap and docker build work, with the image build lock."""
        # Shared by every lab of this user: images are machine-wide, so is their build lock.
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(cache) / "gept" / "lab-build"

    def up(self) -> dict[str, Any]:
        """Start the engine if needed, build/reuse the image, start and wait for the hosts.

        Safe to repeat: running hosts are reused. Returns a report with timings.

        Raises:
            Failed: naming the step that failed (engine, image, boot, ssh).
        """
        t0 = time.monotonic()
        with file_lock(self.topology.state_dir / "lab.lock", timeout=1800, what="gept lab up"):
            started_engine = self.engine.ensure_running()
            # Running hosts are reused as they are; the image is only needed (and built
            # when its recipe changed) for a host that has to be created.
            missing = [h for h in self.topology.hosts
                       if lab_hosts.inspect(self.engine, h, self.topology).status == "missing"]
            if missing:
                build = ensure_image(self.engine, self.recipe, self.work_root)
            else:
                build = BuildReport(self.recipe.systemd_tag(), False, False, 0.0)
            public_key = ensure_keypair(self.topology.key_path)
            write_ssh_config(self.topology)
            lab_hosts.ensure_network(self.engine, self.topology)
            actions = {h.name: lab_hosts.ensure_host(self.engine, h, self.topology, build.tag)
                       for h in self.topology.hosts}
            hosts_state: dict[str, Any] = {}
            for host in self.topology.hosts:
                system = lab_hosts.wait_booted(self.engine, host)
                lab_hosts.install_authorized_key(self.engine, host, public_key)
                info = lab_hosts.inspect(self.engine, host, self.topology)
                hosts_state[host.name] = {
                    "container": host.container,
                    "image": info.image,
                    "image_current": info.image == self.recipe.systemd_tag(),
                    "address": info.address,
                    "ssh_port": host.ssh_port,
                    "published_ports": host.published,
                    "ssh_host_public_key": lab_hosts.host_public_key(self.engine, host),
                    "system": system,
                    "action": actions[host.name],
                }
            write_known_hosts(self.topology.known_hosts_path,
                              {h["ssh_port"]: h["ssh_host_public_key"]
                               for h in hosts_state.values()})
            for host in self.topology.hosts:
                lab_hosts.wait_ssh(self.topology, host)
            state: dict[str, Any] = {
                "prefix": self.topology.prefix,
                "network": self.topology.network,
                "image": build.tag,
                "state_dir": str(self.topology.state_dir),
                "ssh_key": str(self.topology.key_path),
                "known_hosts": str(self.topology.known_hosts_path),
                "ssh_config": str(self.topology.ssh_config_path),
                "hosts": hosts_state,
                "approvers": agent.ensure_person(self.topology),
            }
            state.update(agent.ensure_agent(self.topology, state))
            write_state(self.topology, state)
        return {
            **state,
            "engine_started": started_engine,
            "image_built": build.built_base or build.built_systemd,
            "image_seconds": round(build.seconds, 1),
            "seconds": round(time.monotonic() - t0, 1),
        }

    def down(self, purge: bool = False) -> dict[str, Any]:
        """Remove the hosts, their volumes and the network (and with ``purge`` the images
        and the key pair). The Docker engine keeps running: other labs may use it.
        """
        t0 = time.monotonic()
        if not self.engine.is_running():
            clear_state(self.topology)
            return {"removed": {}, "engine": "not running", "seconds": 0.0}
        with file_lock(self.topology.state_dir / "lab.lock", timeout=600, what="gept lab down"):
            removed: dict[str, Any] = lab_hosts.remove_all(self.engine, self.topology)
            clear_state(self.topology)
            if purge:
                removed["images"] = remove_images(self.engine, self.recipe)
                for path in (self.topology.key_path, self.topology.key_path.with_suffix(".pub"),
                             self.topology.ssh_config_path):
                    path.unlink(missing_ok=True)
        return {"removed": removed, "seconds": round(time.monotonic() - t0, 1)}

    def status(self) -> dict[str, Any]:
        """Engine, image and per-host state (container, systemd, ports)."""
        running = self.engine.is_running()
        tag = self.recipe.systemd_tag()
        out: dict[str, Any] = {
            "prefix": self.topology.prefix,
            "engine": "running" if running else "stopped",
            "image": tag,
            "state_dir": str(self.topology.state_dir),
            "hosts": {},
        }
        if not running:
            out["image_cached"] = False
            for host in self.topology.hosts:
                out["hosts"][host.name] = {"container": "missing", "system": "",
                                           "published_ports": host.published}
            return out
        out["image_cached"] = image_exists(self.engine, tag)
        for host in self.topology.hosts:
            info = lab_hosts.inspect(self.engine, host, self.topology)
            system = lab_hosts.system_state(self.engine, host) if info.status == "running" else ""
            out["hosts"][host.name] = {
                "container": info.status,
                "name": host.container,
                "system": system,
                "address": info.address,
                "image_current": info.image == tag if info.image else None,
                "published_ports": host.published,
            }
        out["up"] = all(h["container"] == "running" for h in out["hosts"].values())
        return out

    def ssh_argv(self, host: str, command: list[str] | None = None) -> list[str]:
        """The ``ssh`` command line that reaches ``host`` with the lab's key and known_hosts.

        Raises:
            InvalidInput: for an unknown host. Failed: when the lab was never brought up.
        """
        self.topology.host(host)
        if not self.topology.ssh_config_path.exists() or not read_state(self.topology):
            raise Failed("the lab is not up (run `gept lab up`)")
        argv = ["ssh", "-F", str(self.topology.ssh_config_path), host]
        if command:
            argv += ["--", *command]
        return argv

    def run(self, host: str, command: str, timeout: float = 300.0,
            check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run a shell command on ``host`` over SSH (as the deploys and runbooks do).

        Example:
            >>> Lab.from_env().run("ampere", "hostname").stdout    # doctest: +SKIP
            'ampere\\n'
        """
        return run([*self.ssh_argv(host), command], timeout=timeout, check=check,
                   what=f"ssh {host} {shlex.quote(command)[:60]}")

