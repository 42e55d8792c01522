"""The lab image: Debian bookworm from debootstrap, then a systemd layer, cached by recipe.

Two images, each tagged with a hash of its recipe so an unchanged recipe is never rebuilt:

* ``gept-lab/bookworm-base:<hash>`` — ``debootstrap --variant=minbase`` plus a few
  includes, imported with ``docker import``;
* ``gept-lab/bookworm-systemd:<hash>`` — systemd as PID 1, sshd, python3, and everything the
  deploys apt-install pre-baked (Docker engine, PostgreSQL 15, ...) so converges stay fast;
  those installs remain in the deploys and are no-ops here.

Example:
    >>> recipe = ImageRecipe.default(extra_ca_dir=None)
    >>> recipe.systemd_tag().startswith("gept-lab/bookworm-systemd:")
    True
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from gept.core.errors import Failed
from gept.lab.engine import DockerEngine, file_lock
from gept.lab.proc import pipe, run

log = logging.getLogger(__name__)

SUITE = "bookworm"
BASE_REPO = "gept-lab/bookworm-base"
SYSTEMD_REPO = "gept-lab/bookworm-systemd"
IMAGE_LABEL = "gept.lab.image"

# debootstrap resolves these into the minimal base; the rest comes in the systemd layer.
BASE_INCLUDES: tuple[str, ...] = (
    "ca-certificates", "systemd", "systemd-sysv", "dbus", "openssh-server", "python3",
    "iproute2", "sudo", "procps",
)

# Everything the deploys apt-install, pre-baked so their installs are no-ops in the lab.
# Add a package here when a deploy starts installing it (the image rebuilds by itself).
LAB_PACKAGES: tuple[str, ...] = (
    # the host itself
    "systemd", "systemd-sysv", "dbus", "openssh-server", "openssh-client", "sudo",
    "iproute2", "iputils-ping", "netcat-openbsd", "procps", "ca-certificates", "curl",
    "gnupg", "cron", "logrotate", "rsync", "less", "git", "jq", "tzdata", "locales",
    "unattended-upgrades", "systemd-timesyncd", "ufw", "nftables", "iptables",
    # python for the app, pyinfra facts and testinfra
    "python3", "python3-venv", "python3-pip", "libpq5",
    # Ampere: PostgreSQL and the Docker engine with compose v1 (bookworm has no plugin)
    "postgresql-15", "postgresql-client-15", "docker.io", "docker-compose",
    # Every database host and Hydra (the lab's backup repository): pgBackRest; the
    # standby's metrics exporter (disabled in the image: its package starts it on :9100,
    # the 5m collector's port on Ampere; the standby's deploy enables it on its own port)
    "pgbackrest", "prometheus-node-exporter",
    # Hydra: the SSH tunnel to Ampere's PostgreSQL
    "autossh",
)

# The nested Docker engine: overlay2 on the per-host volume, the systemd cgroup driver (so
# nested containers live under the lab host's cgroup), and address ranges that cannot
# collide with the outer engine's 172.17-31/192.168 pools.
DOCKER_DAEMON_JSON: dict[str, object] = {
    "storage-driver": "overlay2",
    "exec-opts": ["native.cgroupdriver=systemd"],
    "bip": "10.213.0.1/24",
    "default-address-pools": [{"base": "10.214.0.0/16", "size": 24}],
}

# Each host makes its own SSH host keys on first boot (the image ships none, so two hosts
# from one image never share a host key).
HOSTKEYS_UNIT = """\
[Unit]
Description=Generate this host's SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
"""

POLICY_RC_D = "#!/bin/sh\n# gept lab image build: no service starts while building\nexit 101\n"

DOCKERFILE = """\
FROM {base}
ENV container=docker LANG=C.UTF-8
ARG DEBIAN_FRONTEND=noninteractive
COPY policy-rc.d /usr/sbin/policy-rc.d
COPY daemon.json /etc/docker/daemon.json
COPY sources.list /etc/apt/sources.list
COPY ca/ /usr/local/share/ca-certificates/
COPY gept-lab-hostkeys.service /etc/systemd/system/gept-lab-hostkeys.service
RUN chmod 0755 /usr/sbin/policy-rc.d \\
 && rm -f /usr/local/share/ca-certificates/.keep \\
 && apt-get update \\
 && apt-get install -y --no-install-recommends {packages} \\
 && update-ca-certificates \\
 && systemctl enable ssh.service gept-lab-hostkeys.service \\
 && systemctl disable prometheus-node-exporter.service \\
 && rm -f /etc/ssh/ssh_host_* /usr/sbin/policy-rc.d \\
 && apt-get clean
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
"""


def _sources_list(mirror: str) -> str:
    security = mirror.rsplit("/", 1)[0] + "/debian-security" if mirror.endswith("/debian") \
        else "http://deb.debian.org/debian-security"
    return (f"deb {mirror} {SUITE} main\n"
            f"deb {mirror} {SUITE}-updates main\n"
            f"deb {security} {SUITE}-security main\n")


@dataclass(frozen=True)
class ImageRecipe:
    """Everything that decides the image's content; its hash is the image tag."""

    mirror: str
    base_includes: tuple[str, ...]
    packages: tuple[str, ...]
    extra_cas: tuple[tuple[str, bytes], ...] = field(default=())

    @classmethod
    def default(cls, extra_ca_dir: Path | None, mirror: str = "http://deb.debian.org/debian",
                ) -> ImageRecipe:
        """The standard recipe; ``extra_ca_dir`` holds extra trusted CAs (``*.crt``).

        Raises:
            ConfigError: when ``extra_ca_dir`` is given but is not a directory.
        """
        cas: list[tuple[str, bytes]] = []
        if extra_ca_dir is not None:
            if not extra_ca_dir.is_dir():
                from gept.core.errors import ConfigError

                raise ConfigError(f"extra trusted CAs: {extra_ca_dir} is not a directory",
                                  field="GEPT_LAB_EXTRA_CA_DIR")
            cas = [(p.name, p.read_bytes()) for p in sorted(extra_ca_dir.glob("*.crt"))]
        return cls(mirror=mirror, base_includes=BASE_INCLUDES, packages=LAB_PACKAGES,
                   extra_cas=tuple(cas))

    def base_hash(self) -> str:
        """Hash of the debootstrap step alone (suite, mirror, includes)."""
        doc = {"suite": SUITE, "mirror": self.mirror, "includes": list(self.base_includes),
               "variant": "minbase"}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]

    def base_tag(self) -> str:
        """``gept-lab/bookworm-base:<hash>``."""
        return f"{BASE_REPO}:{self.base_hash()}"

    def context_files(self) -> dict[str, bytes]:
        """The systemd layer's build context: relative path -> content."""
        files: dict[str, bytes] = {
            "Dockerfile": DOCKERFILE.format(base=self.base_tag(),
                                            packages=" ".join(self.packages)).encode(),
            "policy-rc.d": POLICY_RC_D.encode(),
            "daemon.json": (json.dumps(DOCKER_DAEMON_JSON, indent=2) + "\n").encode(),
            "sources.list": _sources_list(self.mirror).encode(),
            "gept-lab-hostkeys.service": HOSTKEYS_UNIT.encode(),
            "ca/.keep": b"",
        }
        for name, data in self.extra_cas:
            files[f"ca/{name}"] = data
        return files

    def systemd_hash(self) -> str:
        """Hash of the whole recipe: the base hash plus every build-context file."""
        digest = hashlib.sha256(self.base_hash().encode())
        for name, data in sorted(self.context_files().items()):
            digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
        return digest.hexdigest()[:16]

    def systemd_tag(self) -> str:
        """``gept-lab/bookworm-systemd:<hash>``: the image the hosts run."""
        return f"{SYSTEMD_REPO}:{self.systemd_hash()}"


def lab_base_image() -> str:
    """The tag of the lab's own Debian base image, for the environment's ``GEPT_LAB_*``.

    The lab's group data names it as the collectors' base image (no public registry in
    the lab), so the deploys use it as any other base and never import the lab.

    Example:
        >>> lab_base_image().startswith("gept-lab/bookworm-base:")   # doctest: +SKIP
        True
    """
    from gept.lab.topology import LabTopology

    topo = LabTopology.from_env()
    return ImageRecipe.default(topo.extra_ca_dir, topo.mirror).base_tag()


@dataclass(frozen=True)
class BuildReport:
    """What `ensure_image` did, for ``--json`` output and the measurements."""

    tag: str
    built_base: bool
    built_systemd: bool
    seconds: float


def image_exists(engine: DockerEngine, tag: str) -> bool:
    """True when the engine has an image called ``tag``."""
    return engine.docker("image", "inspect", "--format", "{{.Id}}", tag, timeout=30,
                         check=False).returncode == 0


def ensure_image(engine: DockerEngine, recipe: ImageRecipe, work_root: Path) -> BuildReport:
    """Build whichever of the two images is missing; reuse both when present.

    Raises:
        Failed: naming the step (debootstrap, docker import, docker build) that failed.
    """
    started = time.monotonic()
    tag = recipe.systemd_tag()
    if image_exists(engine, tag):
        return BuildReport(tag, False, False, time.monotonic() - started)
    # Images are shared by every lab on the machine: one builder at a time.
    with file_lock(work_root / "image.lock", timeout=1800, what="building the lab image"):
        built_base = built_systemd = False
        if not image_exists(engine, recipe.base_tag()):
            _build_base(engine, recipe, work_root)
            built_base = True
        if not image_exists(engine, tag):
            _build_systemd(engine, recipe, work_root)
            built_systemd = True
    return BuildReport(tag, built_base, built_systemd, time.monotonic() - started)


def _build_base(engine: DockerEngine, recipe: ImageRecipe, work_root: Path) -> None:
    if shutil.which("debootstrap") is None:
        raise Failed("building the lab image needs debootstrap (scripts/setup-machine.sh)")
    work_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="debootstrap-", dir=work_root) as tmp:
        rootfs = Path(tmp) / "rootfs"
        log.info("debootstrap %s into %s", SUITE, rootfs)
        run(["debootstrap", "--variant=minbase", f"--include={','.join(recipe.base_includes)}",
             SUITE, str(rootfs), recipe.mirror], timeout=900, what="debootstrap")
        # debootstrap copies this machine's hostname; each host gets its own via --hostname.
        (rootfs / "etc" / "hostname").unlink(missing_ok=True)
        log.info("docker import %s", recipe.base_tag())
        pipe(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."],
             [engine.client, "import", "--change", f"LABEL {IMAGE_LABEL}=base",
              "--change", "ENV container=docker", "-", recipe.base_tag()],
             timeout=600, env=engine.env, what="docker import of the debootstrap rootfs")


def _build_systemd(engine: DockerEngine, recipe: ImageRecipe, work_root: Path) -> None:
    work_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="image-", dir=work_root) as tmp:
        ctx = Path(tmp)
        for name, data in recipe.context_files().items():
            path = ctx / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        log.info("docker build %s", recipe.systemd_tag())
        engine.docker("build", "--label", f"{IMAGE_LABEL}=systemd", "-t", recipe.systemd_tag(),
                      str(ctx), timeout=1800, what="docker build of the lab image")


def remove_images(engine: DockerEngine, recipe: ImageRecipe) -> list[str]:
    """Remove this recipe's two images, unless another lab's containers still use them
    (images are shared by every lab on the machine; ``docker rmi`` without ``-f`` refuses).

    Returns:
        The tags actually removed.
    """
    removed: list[str] = []
    for tag in (recipe.systemd_tag(), recipe.base_tag()):  # the child layer first
        if not image_exists(engine, tag):
            continue
        if engine.docker("rmi", tag, timeout=120, check=False).returncode == 0:
            removed.append(tag)
    return removed
