"""The gept application on a host: a versioned release with its own venv, installed from
the controller's wheelhouse (``--no-index``), and a ``current`` symlink.

An unchanged release is a no-op: the release directory carries an ``.installed`` marker
written last, and nothing is uploaded when it is present.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import files, server

from deploys.managed import Dir, directories_present, files_present, rendered
from deploys.release import current_release


def release_dir(data: object) -> str:
    """``<app_root>/releases/<version>`` of the release being deployed."""
    return f"{data.app_root}/releases/{current_release().version}"  # type: ignore[attr-defined]


@deploy("Install the gept release")
def install_release() -> object:
    """Upload the wheelhouse, build the release venv, point ``current`` at it.

    Returns:
        The operation that moved ``current`` (restart services ``_if`` it changed).
    """
    data = host.data
    release = current_release()
    target = release_dir(data)
    tarball = f"{data.wheelhouse_dir}/{release.version}.tar"
    directories_present(name="Create the release directories", dirs=[
        Dir(data.wheelhouse_dir), Dir(data.app_root), Dir(f"{data.app_root}/releases")])

    if not host.get_fact(File, path=f"{target}/.installed"):
        files.put(name=f"Upload the wheelhouse of {release.version}", src=str(release.tarball),
                  dest=tarball, mode="0644")
        extras = f"[{data.app_extras}]" if data.app_extras else ""
        server.shell(
            name=f"Build the release venv {release.version}",
            commands=[
                f"rm -rf '{target}' && mkdir -p '{target}/wheels'",
                f"tar -xf '{tarball}' -C '{target}/wheels'",
                f"{data.python} -m venv '{target}/venv'",
                f"'{target}/venv/bin/pip' install -q --no-index '{target}'/wheels/uv-*.whl",
                f"'{target}/venv/bin/uv' pip install -q --offline --no-index --no-cache "
                f"--find-links '{target}/wheels' --python '{target}/venv/bin/python' "
                f"'gept{extras}'",
                f"rm -rf '{target}/wheels' '{tarball}'",
                f"touch '{target}/.installed'",
            ])
    files_present(name="Record the release info", files=[
        rendered("app/release.json.j2", f"{target}/release.json", version=release.version,
                 host_name=host.name)])
    current = files.link(name="Point current at the release", path=f"{data.app_root}/current",
                         target=target)
    files.link(name="Put gept on the PATH", path="/usr/local/bin/gept",
               target=f"{data.app_root}/current/venv/bin/gept")
    keep = int(data.keep_releases)
    server.shell(
        name=f"Prune releases beyond the newest {keep}",
        commands=[f"cd '{data.app_root}/releases' && ls -1t | grep -vxF "
                  f"'{release.version}' | tail -n +{keep} | xargs -r rm -rf --"],
        _if=current.did_change)
    return current
