"""The grading image: the engine connection, the image's source hash, status and build."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker
import requests
from docker.utils import kwargs_from_env

from grader import kitpaths
from grader.contract import CHECK_LANES, Message, join, msg, verbatim
from grader.sandbox.common import SandboxError

IMAGE = "socketgrade-sandbox:latest"
ONLINE_BASE = "python:3.12-slim"
OFFLINE_BASE = "socketgrade-base:bookworm"
SANDBOX_DIR = kitpaths.SANDBOX
# What the image is built from; their content hash is stored on the image as a label, so an
# image built from other files is recognised as stale.
CONTEXT_FILES = ("Dockerfile", "entry.sh", "requirements.txt")
STUDENT_UID = 10001

HASH_LABEL = "org.socketgrade.source-hash"
BASE_LABEL = "org.socketgrade.base"
DEFAULT_HOST = "unix:///var/run/docker.sock"

# How long one request to the engine may take before the engine counts as gone: far above
# its usual answer (well under a second), so that a busy engine creating and removing many
# containers for a class is not mistaken for a dead one.
ENGINE_TIMEOUT_SECONDS = 120
# The same while building the image, where one request lasts the whole build: minutes on a
# slow machine.
BUILD_TIMEOUT_SECONDS = 1800


def default_host() -> str:
    """The engine used when none is named: DOCKER_HOST, else the local socket."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def _client(url: str | None, timeout: int) -> docker.DockerClient:
    if url is None:
        return docker.from_env(timeout=timeout, max_pool_size=64)
    # TLS as the docker CLI takes it (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH), for any engine
    # named on the command line; DOCKER_HOST itself is overridden by the URL.
    return docker.DockerClient(
        base_url=url,
        tls=kwargs_from_env().get("tls", False),
        timeout=timeout,
        max_pool_size=64,
        # ssh:// through the system's ssh client when paramiko is not installed.
        use_ssh_client=importlib.util.find_spec("paramiko") is None,
    )


def connect(timeout: int = ENGINE_TIMEOUT_SECONDS, url: str | None = None) -> docker.DockerClient:
    """A client for the engine at `url` (default: DOCKER_HOST or the local socket), or
    SandboxError saying how to get one."""
    where = url or default_host()
    try:
        client = _client(url, timeout)
        client.ping()
    except docker.errors.DockerException as exc:
        text = str(exc)
        if "Permission denied" in text or "PermissionError" in text:
            raise SandboxError(
                msg(
                    "the Docker engine at {where} refused access (permission denied): add "
                    "your user to the docker group (and log in again), or use --sandbox local",
                    where=where,
                )
            ) from exc
        raise SandboxError(_unreachable(where, _engine_reason(text))) from exc
    except (requests.exceptions.RequestException, OSError) as exc:
        raise SandboxError(_unreachable(where, _engine_reason(str(exc)))) from exc
    return client


def _unreachable(where: str, reason: str) -> Message:
    return msg(
        "no Docker engine is reachable at {where} ({reason}): start dockerd "
        "(scripts/provision-docker.sh does it), or use --sandbox local",
        where=where,
        reason=reason,
    )


def _engine_reason(text: str) -> str:
    """'Error while fetching server API version: ('Connection aborted.', FileNotFoundError(2,
    'No such file or directory'))' -> 'No such file or directory'."""
    found = re.search(r"\w+Error\(\d+, '([^']+)'\)", text) or re.search(
        r"\[Errno -?\d+\] ([^'\")]+)", text
    )
    return found.group(1).strip() if found else short(text)


def short(text: str, limit: int = 160) -> str:
    """`text` on one line of at most `limit` characters, for an error message."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def source_hash() -> str:
    """Content hash of what the image is built from (files, student uid)."""
    digest = hashlib.sha256()
    digest.update(f"student-uid={STUDENT_UID}\n".encode())
    digest.update(f"student-lanes={CHECK_LANES}\n".encode())
    for name in CONTEXT_FILES:
        data = (SANDBOX_DIR / name).read_bytes()
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()[:20]


def image_state(client: docker.DockerClient, image: str = IMAGE):
    """("ok" | "missing" | "stale", the image or None)."""
    try:
        found = client.images.get(image)
    except docker.errors.ImageNotFound:
        return "missing", None
    labels = found.labels or {}
    return ("ok" if labels.get(HASH_LABEL) == source_hash() else "stale"), found


def require_image(client: docker.DockerClient, image: str = IMAGE):
    """The grading image, up to date; SandboxError when it is missing or stale."""
    state, found = image_state(client, image)
    if state != "ok":
        raise SandboxError(
            msg(
                "the grading image {image} is missing: run `grade sandbox build` (`grade "
                "sandbox build --offline` where no registry is reachable)",
                image=image,
            )
            if state == "missing"
            else msg(
                "the grading image {image} is stale: run `grade sandbox build` (`grade "
                "sandbox build --offline` where no registry is reachable)",
                image=image,
            )
        )
    return found


def image_ids(found) -> tuple[str, str]:
    """(id, digest) of a grading image: the engine's id ("sha256:..."), and the registry
    digest ("name@sha256:...") where it has one; an image built here has none."""
    digests = (found.attrs or {}).get("RepoDigests") or []
    return found.id or "", digests[0] if digests else ""


def image_status() -> str:
    """One sentence on the grading image, for `grade sandbox status`, in English."""
    return str(image_status_message())


def image_status_message(client: docker.DockerClient | None = None) -> Message:
    """One sentence on the grading image (on `client`'s engine, default the local one), to
    be said in the chosen language."""
    client = client or connect()
    state, found = image_state(client)
    if state == "missing":
        return msg("{image} is missing: run `grade sandbox build`", image=IMAGE)
    labels = found.labels or {}
    built = (found.attrs.get("Created") or "")[:19].replace("T", " ")
    base = labels.get(BASE_LABEL) or msg("an unknown base")
    if state == "stale":
        return msg(
            "{image} is stale (built {built} from files with hash {old}, sandbox/ now hashes "
            "to {new}): run `grade sandbox build`",
            image=IMAGE,
            built=built,
            old=labels.get(HASH_LABEL, "none"),
            new=source_hash(),
        )
    return msg(
        "{image} is up to date (built {built} on {base}, source hash {hash})",
        image=IMAGE,
        built=built,
        base=base,
        hash=source_hash(),
    )


def _local_python_base(client: docker.DockerClient) -> str | None:
    """A python:3.x-slim image already on this engine (ONLINE_BASE preferred)."""
    tags = sorted({t for img in client.images.list(name="python") for t in img.tags})
    if ONLINE_BASE in tags:
        return ONLINE_BASE
    slim = [
        t
        for t in tags
        if t.startswith("python:3.")
        and t.endswith("-slim")
        and t[len("python:3.") : -len("-slim")].isdigit()
        and int(t[len("python:3.") : -len("-slim")]) >= 11
    ]
    return slim[-1] if slim else None


def _can_debootstrap(client: docker.DockerClient) -> bool:
    try:
        client.images.get(OFFLINE_BASE)
        return True
    except docker.errors.ImageNotFound:
        return os.geteuid() == 0 and shutil.which("debootstrap") is not None


def _ensure_offline_base(client: docker.DockerClient, progress, url: str | None) -> str:
    try:
        client.images.get(OFFLINE_BASE)
        return OFFLINE_BASE
    except docker.errors.ImageNotFound:
        pass
    script = SANDBOX_DIR / "build-base.sh"
    progress(
        msg(
            "building the offline base {base} with debootstrap ({script})",
            base=OFFLINE_BASE,
            script=str(script),
        )
    )
    try:
        # The script imports the base with the docker CLI: into the engine being built on.
        env = dict(os.environ, DOCKER_HOST=url) if url else None
        subprocess.run(["sh", str(script), OFFLINE_BASE], check=True, env=env)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SandboxError(
            msg(
                "the offline base image {base} could not be built ({error}): run `sudo sh "
                "{script}` and read its output",
                base=OFFLINE_BASE,
                error=str(exc),
                script=str(script),
            )
        ) from exc
    return OFFLINE_BASE


def _install_libs(target: Path, arch: str, progress) -> None:
    """The harness's libraries, unpacked from wheels for the engine's architecture."""
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--no-compile",
        "--only-binary=:all:",
        "--target",
        str(target),
        "--implementation",
        "cp",
        "--python-version",
        "3.11",
        "--platform",
        f"manylinux_2_28_{arch}",
        "--platform",
        f"manylinux2014_{arch}",
        "-r",
        str(SANDBOX_DIR / "requirements.txt"),
    ]
    wheelhouse = os.environ.get("SOCKETGRADE_WHEELHOUSE")
    if wheelhouse:
        cmd += ["--no-index", "--find-links", wheelhouse]
    progress(
        msg("fetching the harness's libraries with pip from {folder}", folder=wheelhouse)
        if wheelhouse
        else msg("fetching the harness's libraries with pip")
    )
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SandboxError(
            msg(
                "pip could not fetch the harness's libraries ({error}): check that PyPI is "
                "reachable, or set SOCKETGRADE_WHEELHOUSE to a folder holding the wheels of "
                "sandbox/requirements.txt",
                error=short(last),
            )
        )


def build_image(offline: bool | None = None, progress=print, url: str | None = None) -> str:
    """Build socketgrade-sandbox:latest and return its id. offline=True builds on the
    debootstrap base (made if missing), False on python:3.12-slim (pulled if missing),
    None uses a python:3.x-slim already present, else the debootstrap base (already there,
    or made when this process may: root with debootstrap), else pulls python:3.12-slim."""
    client = connect(timeout=BUILD_TIMEOUT_SECONDS, url=url)
    started = time.monotonic()
    if offline is None:
        base = _local_python_base(client) or (
            _ensure_offline_base(client, progress, url) if _can_debootstrap(client) else ONLINE_BASE
        )
    elif offline:
        base = _ensure_offline_base(client, progress, url)
    else:
        base = ONLINE_BASE
    wanted = source_hash()
    with tempfile.TemporaryDirectory(prefix="socketgrade-build-") as ctx:
        for name in CONTEXT_FILES:
            shutil.copy2(SANDBOX_DIR / name, Path(ctx) / name)
        _install_libs(Path(ctx) / "lib", client.info().get("Architecture", "x86_64"), progress)
        progress(msg("building {image} on {base}", image=IMAGE, base=base))
        image_id = None
        try:
            for chunk in client.api.build(
                path=ctx,
                tag=IMAGE,
                rm=True,
                forcerm=True,
                pull=False,
                decode=True,
                network_mode="none",  # RUN steps need nothing from outside
                buildargs={
                    "BASE": base,
                    "STUDENT_UID": str(STUDENT_UID),
                    "STUDENT_LANES": str(CHECK_LANES),
                },
                labels={HASH_LABEL: wanted, BASE_LABEL: base},
            ):
                if "error" in chunk:
                    raise SandboxError(
                        msg(
                            "building {image} on {base} failed: {error}",
                            image=IMAGE,
                            base=base,
                            error=short(chunk["error"], 400),
                        )
                    )
                line = (chunk.get("stream") or "").rstrip()
                if line:
                    progress(verbatim("  " + line))  # Docker's own words
                if "aux" in chunk and isinstance(chunk["aux"], dict):
                    image_id = chunk["aux"].get("ID", image_id)
        except docker.errors.APIError as exc:
            hint = (
                msg(" (no registry is reachable? try `grade sandbox build --offline`)")
                if base == ONLINE_BASE
                else verbatim("")
            )
            failed = msg(
                "building {image} on {base} failed: {error}",
                image=IMAGE,
                base=base,
                error=short(str(exc), 300),
            )
            raise SandboxError(join([failed, hint], "")) from exc
    state, found = image_state(client)
    if state != "ok":
        raise SandboxError(
            msg(
                "building {image} finished but the image is {state}: run `grade sandbox "
                "build` again and read its output",
                image=IMAGE,
                state=state,
            )
        )
    progress(
        msg(
            "built {image} ({id}) on {base} in {seconds:.0f} s",
            image=IMAGE,
            id=found.short_id,
            base=base,
            seconds=time.monotonic() - started,
        )
    )
    return image_id or found.id
