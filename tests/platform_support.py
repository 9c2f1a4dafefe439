"""What the platform tests share: a Docker client, a plain container of the kit's base image, and
the expected results of a hand-in read from assignment.toml and the fixture tables."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from tests.docker_support import _unavailable

# The kit's offline base image: Debian's python3 3.11, no pip, no venv (made by
# `grade sandbox build`, which the grading image starts from).
BASE_IMAGE = "socketgrade-base:bookworm"
# The student's user, as the in-place sandbox names it.
STUDENT = "sgstudent"


def docker_client():
    """A client of a running engine that holds BASE_IMAGE, or the test is skipped (failed on
    CI) with the reason."""
    try:
        import docker
        from docker.errors import DockerException, ImageNotFound
    except ImportError as exc:
        _unavailable(f"the docker SDK is not importable ({exc})")
    try:
        client = docker.from_env()
        client.ping()
    except DockerException as exc:
        _unavailable(f"no Docker engine ({exc})")
    try:
        client.images.get(BASE_IMAGE)
    except ImageNotFound:
        _unavailable(f"the image {BASE_IMAGE} is missing: run `grade sandbox build` first")
    return client


def tar_of(files: dict[str, bytes], mode: int = 0o644) -> bytes:
    """A tar archive of {path: content}, for put_archive."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def run(container, cmd: str, user: str = "root") -> tuple[int, str]:
    code, out = container.exec_run(["sh", "-c", cmd], user=user)
    return code, out.decode("utf-8", "replace")


def read_json(container, path: str) -> dict:
    code, out = run(container, f"cat {path}")
    assert code == 0, f"cannot read {path}: {out}"
    return json.loads(out)


def expected_failures(table: dict, ident: str, all_checks: list[str]) -> tuple[set[str], dict]:
    entry = table[ident]
    fails = set(all_checks) if entry["fails"] == "all" else set(entry["fails"])
    return fails, entry.get("why", {})
