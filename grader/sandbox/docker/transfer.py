"""Files to an engine on another machine: volumes filled through the engine's API, the report
fetched back, where an engine cannot see this machine's folders to mount them."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path

import docker
import requests
from docker.types import Mount

from grader import kitpaths
from grader.sandbox.docker.container import OUT_IN, OWNER_LABEL, ROLE, ROLE_LABEL

# The volumes of one run, by what they hold; each is mounted where the bind mount would be.
INPUTS = ("grader", "assignment", "submission")
OUTPUT = "out"
# Where the filling container (never started) holds the volumes while they are filled.
FILL_AT = "/fill"
REPORT = "report.json"
# Never sent: byte code the engine's Python would not use anyway.
LEFT_OUT = ("__pycache__",)


STAGE_BYTES = 64 * 2**20


def stage_submission(source: Path, dest: Path, limit: int = STAGE_BYTES) -> list[str]:
    """Copy the submission's regular files and folders to `dest`, which is what the container
    gets. Symbolic links are left out: the harness copies the submission as root inside the
    container, where a link could point at the kit or the results. Returns what was left out."""
    skipped: list[str] = []
    total = 0

    def walk(src: Path, dst: Path) -> None:
        nonlocal total
        dst.mkdir()
        with os.scandir(src) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                rel = str(Path(entry.path).relative_to(source))
                if entry.is_dir(follow_symlinks=False):
                    walk(Path(entry.path), dst / entry.name)
                elif entry.is_file(follow_symlinks=False):
                    size = entry.stat(follow_symlinks=False).st_size
                    if total + size > limit:
                        skipped.append(rel)
                        continue
                    total += size
                    shutil.copyfile(entry.path, dst / entry.name, follow_symlinks=False)
                else:
                    skipped.append(rel)

    walk(Path(source), dest)
    return skipped


def sees_host_files(client: docker.DockerClient, image: str, folders: list[Path]) -> bool:
    """Whether the engine can bind-mount these folders of this machine: the engine checks
    that a bind mount's source exists when the container is made, and our folders have
    names no other machine has."""
    name = f"socketgrade-probe-{uuid.uuid4().hex[:12]}"
    mounts = [
        Mount(f"/probe/{i}", str(folder.resolve()), type="bind", read_only=True)
        for i, folder in enumerate(folders)
    ]
    try:
        client.api.create_container(
            image,
            command=["true"],
            name=name,
            host_config=client.api.create_host_config(mounts=mounts, network_mode="none"),
            labels={ROLE_LABEL: "probe"},
        )
    except docker.errors.APIError as exc:
        if exc.is_client_error() and "does not exist" in str(exc):
            return False
        raise
    try:
        client.api.remove_container(name, force=True)
    except (docker.errors.APIError, requests.RequestException):
        pass
    return True


def _tar(folder: Path) -> bytes:
    """`folder`'s regular files and folders (as root's), for put_archive."""

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if any(part in LEFT_OUT for part in Path(info.name).parts):
            return None
        if not (info.isfile() or info.isdir()):
            return None
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for child in sorted(folder.iterdir()):
            tar.add(child, arcname=child.name, recursive=True, filter=keep)
    return buffer.getvalue()


def fill_volumes(
    client: docker.DockerClient,
    image: str,
    name: str,
    labels: dict[str, str],
    assignment: Path,
    submission: Path,
) -> dict[str, str]:
    """A volume per input of run `name` (the kit, the assignment, the staged submission)
    filled with its files, and an empty one for the output: {what: volume name}."""
    volumes = {what: f"{name}-{what}" for what in (*INPUTS, OUTPUT)}
    for volume in volumes.values():
        client.volumes.create(volume, labels=labels)
    sources = {"grader": kitpaths.PACKAGE, "assignment": assignment, "submission": submission}
    filler = client.containers.create(
        image,
        command=["true"],
        name=f"{name}-fill",
        labels=labels,
        network_mode="none",
        read_only=True,
        mounts=[Mount(f"{FILL_AT}/{what}", volumes[what], type="volume") for what in INPUTS],
    )
    try:
        for what in INPUTS:
            filler.put_archive(f"{FILL_AT}/{what}", _tar(Path(sources[what])))
    finally:
        filler.remove(force=True)
    return volumes


def fetch_report(container, out: Path) -> None:
    """The harness's report.json from the (stopped) container's output volume into `out`;
    nothing when it wrote none."""
    try:
        stream, _ = container.get_archive(f"{OUT_IN}/{REPORT}")
    except docker.errors.NotFound:
        return
    data = b"".join(stream)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.getmember(REPORT)
        handle = tar.extractfile(member) if member.isfile() else None
        if handle is not None:
            (out / REPORT).write_bytes(handle.read())


def remove_volumes(client: docker.DockerClient, names) -> None:
    for volume in names:
        try:
            client.api.remove_volume(volume, force=True)
        except (docker.errors.APIError, requests.RequestException):
            pass  # gone already, or an engine gone away: the next grader's clean-up


def our_volumes(
    client: docker.DockerClient, owner: str | None, dead: Callable[[str], bool] | None = None
) -> list[str]:
    """The volumes grader process `owner` ("host:pid") made on this engine; with `owner`
    None, those of every owner for which `dead(owner)` holds."""
    labels = [f"{ROLE_LABEL}={ROLE}"] + ([f"{OWNER_LABEL}={owner}"] if owner else [])
    try:
        found = client.volumes.list(filters={"label": labels})
    except (docker.errors.APIError, requests.RequestException):
        return []
    return [
        v.name
        for v in found
        if owner or (dead is not None and dead((v.attrs.get("Labels") or {}).get(OWNER_LABEL, "")))
    ]
