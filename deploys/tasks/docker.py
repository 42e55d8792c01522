"""The Docker engine from Debian (with docker-compose v1: bookworm has no compose plugin)
and images shipped from the controller by ``docker save`` / ``docker load``."""

from __future__ import annotations

from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, server, systemd

from deploys.facts.gept import DockerImageId
from deploys.guard import plan_only
from deploys.images import built, image_for

IMAGES_DIR = "/opt/gept/images"


@deploy("Install the Docker engine")
def install_docker() -> None:
    """docker.io and docker-compose from apt; the engine running and enabled."""
    apt.packages(name="Install Docker and docker-compose",
                 packages=["docker.io", "docker-compose"], no_recommends=True)
    systemd.service(name="Start the Docker engine", service="docker.service", running=True,
                    enabled=True)
    files.directory(name=f"Create {IMAGES_DIR}", path=IMAGES_DIR, user="root", group="root",
                    mode="0700")


def ship_image(name: str, base_setting: str | None, with_wheels: bool) -> tuple[str, Any]:
    """Make sure the host has image ``name`` of this tree.

    Returns:
        The tag and the load operation (``None`` when the host already had the image).
    """
    tag = image_for(name, base_setting, with_wheels).tag
    if host.get_fact(DockerImageId, tag=tag):
        return tag, None
    if plan_only():
        # Planning must not build images: show the change without doing the work.
        return tag, server.shell(name=f"Ship the {tag} image (built on the controller)",
                                 commands=["true"])
    image = built(name, base_setting, with_wheels)
    dest = f"{IMAGES_DIR}/{name}.tar"
    files.put(name=f"Upload the {tag} image", src=str(image.tarball), dest=dest, mode="0600")
    loaded = server.shell(name=f"Load the {tag} image",
                          commands=[f"docker load -q -i {dest}", f"rm -f {dest}"])
    return tag, loaded
