"""Docker images built on the controller and shipped to hosts without a registry.

An image is built from ``docker/<name>/Dockerfile`` (plus, for the collectors, the release's
wheelhouse) FROM ``BASE`` — ``debian:bookworm-slim`` by default, or the inventory's
``collectors_base_image`` (the lab's group data names its own debootstrapped bookworm) — then
``docker save``d to a tar in the controller cache, uploaded, and ``docker load``ed on the
host. Tags carry a content hash, so an image already on the host is never rebuilt or sent.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from deploys.release import REPO, cache_root, current_release

DOCKER_TIMEOUT = 1200
# Wheels the collectors never import: left out of the image's build context.
ML_ONLY = ("catboost", "pandas", "scipy", "matplotlib", "plotly", "pillow", "fonttools",
           "contourpy", "kiwisolver", "graphviz", "narwhals")


def _docker() -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ)
    env.setdefault("DOCKER_BUILDKIT", "0")
    if Path("/usr/bin/docker").exists():
        return ["/usr/bin/docker"], env
    env.setdefault("DOCKER_API_VERSION", "1.41")
    return [shutil.which("docker") or "docker"], env


def _run(args: list[str], what: str) -> str:
    cmd, env = _docker()
    proc = subprocess.run(cmd + args, capture_output=True, text=True, env=env,
                          timeout=DOCKER_TIMEOUT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): "
                           f"{(proc.stderr or proc.stdout)[-2000:]}")
    return proc.stdout


def resolve_base(setting: str | None) -> str:
    """The inventory's ``collectors_base_image``, else ``debian:bookworm-slim``."""
    return setting or "debian:bookworm-slim"


@dataclass(frozen=True)
class Image:
    """A content-addressed image: its tag and where its saved tar is cached."""

    name: str
    tag: str

    @property
    def tarball(self) -> Path:
        """The ``docker save`` output on the controller."""
        return cache_root() / "images" / (self.tag.replace("/", "_").replace(":", "_") + ".tar")


def _context(name: str, with_wheels: bool) -> tuple[Path, str]:
    """A build context directory and its content hash."""
    ctx = Path(tempfile.mkdtemp(prefix=f"ctx-{name}-"))
    shutil.copy2(REPO / "docker" / name / "Dockerfile", ctx / "Dockerfile")
    digest = hashlib.sha256((ctx / "Dockerfile").read_bytes())
    if with_wheels:
        release = current_release()
        wheels = ctx / "wheelhouse"
        wheels.mkdir()
        src = release.directory / "wheelhouse"
        if not src.exists():
            import tarfile

            with tarfile.open(release.tarball) as tar:
                tar.extractall(src)
        for wheel in sorted(src.glob("*.whl")):
            if wheel.name.split("-")[0].lower() in ML_ONLY:
                continue
            os.link(wheel, wheels / wheel.name)
        digest.update(release.version.encode())
    return ctx, digest.hexdigest()[:12]


@functools.lru_cache(maxsize=8)
def image_for(name: str, base_setting: str | None, with_wheels: bool) -> Image:
    """The tag of image ``name`` for this tree (computed without building)."""
    base = resolve_base(base_setting)
    ctx, digest = _context(name, with_wheels)
    shutil.rmtree(ctx, ignore_errors=True)
    digest = hashlib.sha256(f"{digest}:{base}".encode()).hexdigest()[:12]
    return Image(name, f"gept/{name}:{digest}")


@functools.lru_cache(maxsize=8)
def built(name: str, base_setting: str | None, with_wheels: bool) -> Image:
    """Build (if needed) and save (if needed) the image; returns it with its tar cached."""
    image = image_for(name, base_setting, with_wheels)
    if image.tarball.exists():
        return image
    image.tarball.parent.mkdir(parents=True, exist_ok=True)
    cmd, env = _docker()
    have = subprocess.run([*cmd, "image", "inspect", image.tag], capture_output=True,
                          env=env, timeout=60, check=False).returncode == 0
    if not have:
        ctx, _ = _context(name, with_wheels)
        try:
            _run(["build", "-q", "--build-arg", f"BASE={resolve_base(base_setting)}",
                  "-t", image.tag, str(ctx)], f"docker build of {image.tag}")
        finally:
            shutil.rmtree(ctx, ignore_errors=True)
    partial = image.tarball.with_suffix(".partial")
    _run(["save", "-o", str(partial), image.tag], f"docker save of {image.tag}")
    partial.rename(image.tarball)
    return image
