"""Docker sandbox: one fresh, hardened container per submission, removed whatever happens."""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import docker
import requests
from docker.types import LogConfig, Mount, Ulimit

from grader import kitpaths
from grader.harness.launch import Limits
from grader.models import RunOutcome, RunRequest
from grader.sandbox import DEFAULT_WALL_CLOCK, SandboxError, harness_args, read_report

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
ROLE_LABEL = "org.socketgrade.role"      # "grading" on every container a DockerSandbox starts
OWNER_LABEL = "org.socketgrade.owner"    # "host:pid" of the grader process that started it
ROLE = "grading"

# Paths as the harness sees them inside the container (see sandbox/Dockerfile).
HARNESS_HOME = "/opt/harness"
KIT_IN = f"{HARNESS_HOME}/kit"
SUBMISSION_IN = f"{HARNESS_HOME}/submission"
OUT_IN = f"{HARNESS_HOME}/out"
# The harness's copies of the submission get their own tmpfs: whatever the student's program
# writes to /tmp or /dev/shm cannot starve the copies of later checks.
WORK_IN = "/work"

# Every capability is dropped; these few are given back to the harness, which runs as root.
# The student's program gets none of them: the harness setuid()s to STUDENT_UID before
# exec, which clears them, and no-new-privileges stops any way back.
CAPABILITIES = {
    "CHOWN": "hand each copy of the submission (and its trace file) to the student's uid",
    # The harness writes the trace file and the launcher into the run folder after handing
    # it to the student's uid (mode 0700), and reads that uid's /proc/PID/fd; DAC_OVERRIDE
    # covers both (DAC_READ_SEARCH alone covers only the reading).
    "DAC_OVERRIDE": "write into the student-owned run folder; read its /proc/PID/fd, fdinfo",
    "SYS_PTRACE": "look into the student's process: /proc/PID/fd, fdinfo, wchan, syscall",
    "SETUID": "start the student's program as the unprivileged uid",
    "SETGID": "drop supplementary groups and set the student's gid",
    "KILL": "kill every process the student's program started (another uid's)",
}

LOG_HEAD = 8 * 1024
LOG_TAIL = 8 * 1024


@dataclass(frozen=True)
class DockerLimits:
    """cgroup and rlimit bounds of one grading container (the harness adds per-process
    rlimits for the student's program inside it)."""
    memory_mib: int = 1024          # memory and memory+swap: no swap at all
    pids: int = 256                 # harness threads included
    cpus: float = 1.0
    file_size_mib: int = 64
    open_files: int = 4096
    tmpfs_mib: int = 64             # /tmp, for whatever the student's program writes there
    work_mib: int = 128             # /work: the harness's copies of the submission
    shm_mib: int = 16               # /dev/shm, the other writable place


# --------------------------------------------------------------------------- engine and image

def connect(timeout: int = 120) -> docker.DockerClient:
    """A client for the local engine, or SandboxError saying how to get one."""
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker.from_env(timeout=timeout, max_pool_size=64)
        client.ping()
    except docker.errors.DockerException as exc:
        text = str(exc)
        if "Permission denied" in text or "PermissionError" in text:
            raise SandboxError(
                f"the Docker engine at {where} refused access (permission denied): add your "
                f"user to the docker group (and log in again), or use --sandbox local") from exc
        raise SandboxError(
            f"no Docker engine is reachable at {where} ({_engine_reason(text)}): start dockerd "
            f"(scripts/provision-docker.sh does it), or use --sandbox local") from exc
    except requests.exceptions.RequestException as exc:
        raise SandboxError(
            f"no Docker engine is reachable at {where} ({_engine_reason(str(exc))}): start dockerd "
            f"(scripts/provision-docker.sh does it), or use --sandbox local") from exc
    return client


def _engine_reason(text: str) -> str:
    """'Error while fetching server API version: ('Connection aborted.', FileNotFoundError(2,
    'No such file or directory'))' -> 'No such file or directory'."""
    found = (re.search(r"\w+Error\(\d+, '([^']+)'\)", text)
             or re.search(r"\[Errno -?\d+\] ([^'\")]+)", text))
    return found.group(1).strip() if found else _short(text)


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def source_hash() -> str:
    """Content hash of what the image is built from (files, student uid)."""
    digest = hashlib.sha256()
    digest.update(f"student-uid={STUDENT_UID}\n".encode())
    for name in CONTEXT_FILES:
        data = (SANDBOX_DIR / name).read_bytes()
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()[:20]


def _image_state(client: docker.DockerClient, image: str = IMAGE):
    """("ok" | "missing" | "stale", the image or None)."""
    try:
        found = client.images.get(image)
    except docker.errors.ImageNotFound:
        return "missing", None
    labels = found.labels or {}
    return ("ok" if labels.get(HASH_LABEL) == source_hash() else "stale"), found


def require_image(client: docker.DockerClient, image: str = IMAGE) -> None:
    state, _ = _image_state(client, image)
    if state != "ok":
        raise SandboxError(
            f"the grading image {image} is {state}: run `grade sandbox build` "
            f"(`grade sandbox build --offline` where no registry is reachable)")


def image_status() -> str:
    """One sentence on the grading image, for `grade sandbox status`."""
    client = connect()
    state, found = _image_state(client)
    if state == "missing":
        return f"{IMAGE} is missing: run `grade sandbox build`"
    labels = found.labels or {}
    built = (found.attrs.get("Created") or "")[:19].replace("T", " ")
    base = labels.get(BASE_LABEL, "an unknown base")
    if state == "stale":
        return (f"{IMAGE} is stale (built {built} from files with hash "
                f"{labels.get(HASH_LABEL, 'none')}, sandbox/ now hashes to {source_hash()}): "
                f"run `grade sandbox build`")
    return f"{IMAGE} is up to date (built {built} on {base}, source hash {source_hash()})"


def _local_python_base(client: docker.DockerClient) -> str | None:
    """A python:3.x-slim image already on this engine (ONLINE_BASE preferred)."""
    tags = sorted({t for img in client.images.list(name="python") for t in img.tags})
    if ONLINE_BASE in tags:
        return ONLINE_BASE
    slim = [t for t in tags if t.startswith("python:3.") and t.endswith("-slim")
            and t[len("python:3."):-len("-slim")].isdigit()
            and int(t[len("python:3."):-len("-slim")]) >= 11]
    return slim[-1] if slim else None


def _can_debootstrap(client: docker.DockerClient) -> bool:
    try:
        client.images.get(OFFLINE_BASE)
        return True
    except docker.errors.ImageNotFound:
        return os.geteuid() == 0 and shutil.which("debootstrap") is not None


def _ensure_offline_base(client: docker.DockerClient, progress) -> str:
    try:
        client.images.get(OFFLINE_BASE)
        return OFFLINE_BASE
    except docker.errors.ImageNotFound:
        pass
    script = SANDBOX_DIR / "build-base.sh"
    progress(f"building the offline base {OFFLINE_BASE} with debootstrap ({script})")
    try:
        subprocess.run(["sh", str(script), OFFLINE_BASE], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SandboxError(f"the offline base image {OFFLINE_BASE} could not be built "
                           f"({exc}): run `sudo sh {script}` and read its output") from exc
    return OFFLINE_BASE


def _install_libs(target: Path, arch: str, progress) -> None:
    """The harness's libraries, unpacked from wheels for the engine's architecture."""
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--no-deps", "--no-compile", "--only-binary=:all:", "--target", str(target),
           "--implementation", "cp", "--python-version", "3.11",
           "--platform", f"manylinux_2_28_{arch}", "--platform", f"manylinux2014_{arch}",
           "-r", str(SANDBOX_DIR / "requirements.txt")]
    wheelhouse = os.environ.get("SOCKETGRADE_WHEELHOUSE")
    if wheelhouse:
        cmd += ["--no-index", "--find-links", wheelhouse]
    progress("fetching the harness's libraries with pip"
             + (f" from {wheelhouse}" if wheelhouse else ""))
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SandboxError(f"pip could not fetch the harness's libraries ({_short(last)}): check "
                           f"that PyPI is reachable, or set SOCKETGRADE_WHEELHOUSE to a folder "
                           f"holding the wheels of sandbox/requirements.txt")


def build_image(offline: bool | None = None, progress=print) -> str:
    """Build socketgrade-sandbox:latest and return its id. offline=True builds on the
    debootstrap base (made if missing), False on python:3.12-slim (pulled if missing),
    None uses a python:3.x-slim already present, else the debootstrap base (already there,
    or made when this process may: root with debootstrap), else pulls python:3.12-slim."""
    client = connect(timeout=1800)
    started = time.monotonic()
    if offline is None:
        base = _local_python_base(client) or (
            _ensure_offline_base(client, progress) if _can_debootstrap(client) else ONLINE_BASE)
    elif offline:
        base = _ensure_offline_base(client, progress)
    else:
        base = ONLINE_BASE
    wanted = source_hash()
    with tempfile.TemporaryDirectory(prefix="socketgrade-build-") as ctx:
        for name in CONTEXT_FILES:
            shutil.copy2(SANDBOX_DIR / name, Path(ctx) / name)
        _install_libs(Path(ctx) / "lib", client.info().get("Architecture", "x86_64"), progress)
        progress(f"building {IMAGE} on {base}")
        image_id = None
        try:
            for chunk in client.api.build(
                    path=ctx, tag=IMAGE, rm=True, forcerm=True, pull=False, decode=True,
                    network_mode="none",   # RUN steps need nothing from outside
                    buildargs={"BASE": base, "STUDENT_UID": str(STUDENT_UID)},
                    labels={HASH_LABEL: wanted, BASE_LABEL: base}):
                if "error" in chunk:
                    raise SandboxError(f"building {IMAGE} on {base} failed: "
                                       f"{_short(chunk['error'], 400)}")
                line = (chunk.get("stream") or "").rstrip()
                if line:
                    progress("  " + line)
                if "aux" in chunk and isinstance(chunk["aux"], dict):
                    image_id = chunk["aux"].get("ID", image_id)
        except docker.errors.APIError as exc:
            hint = (" (no registry is reachable? try `grade sandbox build --offline`)"
                    if base == ONLINE_BASE else "")
            raise SandboxError(f"building {IMAGE} on {base} failed: "
                               f"{_short(str(exc), 300)}{hint}") from exc
    state, found = _image_state(client)
    if state != "ok":
        raise SandboxError(f"building {IMAGE} finished but the image is {state}: "
                           f"run `grade sandbox build` again and read its output")
    progress(f"built {IMAGE} ({found.short_id}) on {base} in "
             f"{time.monotonic() - started:.0f} s")
    return image_id or found.id


# --------------------------------------------------------------------------- the sandbox

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


def _bounded_log(raw: bytes) -> str:
    if len(raw) > LOG_HEAD + LOG_TAIL:
        hidden = len(raw) - LOG_HEAD - LOG_TAIL
        raw = raw[:LOG_HEAD] + b"\n[... %d bytes not shown ...]\n" % hidden + raw[-LOG_TAIL:]
    return raw.decode("utf-8", errors="replace")


class DockerSandbox:
    """Each submission in its own fresh container: no network but loopback, cgroup limits,
    read-only root with a small tmpfs, almost no capabilities, no-new-privileges. The
    student's program runs in it as an unprivileged uid; the wall clock is kept from here."""

    name = "docker"

    def __init__(self, wall_clock: float = DEFAULT_WALL_CLOCK, scratch: str | Path | None = None,
                 limits: DockerLimits = DockerLimits(), image: str = IMAGE):
        self.wall_clock = wall_clock
        self.scratch = Path(scratch) if scratch is not None else None
        self.limits = limits
        self.image = image
        self.client = connect()
        require_image(self.client, image)
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._running: set[str] = set()      # container names, registered before create()
        self._stopped: set[str] = set()      # names stop_all removed under a running run()
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._remove_orphans()

    def describe(self) -> dict:
        lim, student = self.limits, Limits()
        return {
            "sandbox": f"docker ({self.image}: a fresh container per submission, "
                       f"no network but loopback, read-only root, no-new-privileges)",
            "memory": f"{lim.memory_mib} MiB for the whole container, no swap (student's "
                      f"program: {student.memory // 2**20} MiB resident, polled by the kit, "
                      f"which kills it past that; address space is not limited)",
            "processes": f"{lim.pids} (harness threads included)",
            "CPU": f"{lim.cpus:g} core" + ("" if lim.cpus == 1 else "s"),
            "file size": f"{lim.file_size_mib} MiB (student's program: "
                         f"{student.file_size // 2**20} MiB)",
            "open files": f"{lim.open_files} (student's program: {student.open_files})",
            "writable space": f"copies of the submission {lim.work_mib} MiB, /tmp "
                              f"{lim.tmpfs_mib} MiB, /dev/shm {lim.shm_mib} MiB (all in memory)",
            "CPU time": f"{student.cpu_seconds} s (student's program)",
            "capabilities": "all dropped but " + ", ".join(sorted(CAPABILITIES))
                            + " (harness only)",
            "student uid": str(STUDENT_UID),
            "wall clock": f"{self.wall_clock:g} s per submission",
        }

    def create_kwargs(self, req: RunRequest, name: str, submission: Path, out: Path) -> dict:
        """Everything containers.create() is given: the hardening lives here."""
        lim = self.limits
        assignment_in = f"{KIT_IN}/assignments/{req.assignment.folder.name}"
        command = harness_args(req, f"{assignment_in}/{req.assignment.checks_file.name}",
                               SUBMISSION_IN, f"{OUT_IN}/report.json", WORK_IN, user=STUDENT_UID)
        if req.submission.folder is None and req.submission.problem:
            command += ["--entry-problem", req.submission.problem]
        mib = 2 ** 20
        return dict(
            image=self.image,
            command=command,
            name=name,
            labels={ROLE_LABEL: ROLE, OWNER_LABEL: self.owner,
                    "org.socketgrade.submission": req.submission.id[:200]},
            hostname="sandbox",
            network_mode="none",
            read_only=True,
            tmpfs={"/tmp": f"rw,nosuid,nodev,noexec,size={lim.tmpfs_mib}m,mode=1777",
                   WORK_IN: f"rw,nosuid,nodev,noexec,size={lim.work_mib}m,mode=0755"},
            shm_size=f"{lim.shm_mib}m",
            mounts=[
                # Wherever this `grader` was imported from: a checkout or site-packages.
                Mount(f"{KIT_IN}/grader", str(kitpaths.PACKAGE), type="bind", read_only=True),
                Mount(assignment_in, str(req.assignment.folder.resolve()), type="bind",
                      read_only=True),
                Mount(SUBMISSION_IN, str(submission.resolve()), type="bind", read_only=True),
                Mount(OUT_IN, str(out.resolve()), type="bind", read_only=False),
            ],
            cap_drop=["ALL"],
            cap_add=sorted(CAPABILITIES),
            security_opt=["no-new-privileges"],
            mem_limit=f"{lim.memory_mib}m",
            memswap_limit=f"{lim.memory_mib}m",
            pids_limit=lim.pids,
            nano_cpus=int(lim.cpus * 1e9),
            ulimits=[Ulimit(name="fsize", soft=lim.file_size_mib * mib,
                            hard=lim.file_size_mib * mib),
                     Ulimit(name="nofile", soft=lim.open_files, hard=lim.open_files),
                     Ulimit(name="core", soft=0, hard=0)],
            ipc_mode="private",
            log_config=LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"}),
            stdin_open=False,
            tty=False,
        )

    def run(self, req: RunRequest) -> RunOutcome:
        start = time.monotonic()
        bound = min(req.wall_clock, self.wall_clock)
        limits = self.describe()
        name = f"socketgrade-{os.getpid()}-{next(self._seq)}-{uuid.uuid4().hex[:8]}"
        if self.scratch is not None:
            self.scratch.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="socketgrade-docker-", dir=self.scratch))
        timed_out, code, oom, log, stopped = False, None, False, "", False
        try:
            out = scratch / "out"
            out.mkdir()
            # World-writable, inside our private 0700 folder: the container's root may not
            # be root on the host (rootless engines, userns-remap), and when we are not root
            # it must still be able to write here.
            out.chmod(0o777)
            submission = scratch / "submission"
            if req.submission.folder is None:
                submission.mkdir()
                skipped = []
            else:
                try:
                    skipped = stage_submission(req.submission.folder, submission)
                except OSError as exc:
                    return RunOutcome(None, time.monotonic() - start, self.name, limits,
                                      error=f"the submission folder {req.submission.folder} "
                                            f"could not be read: {exc}",
                                      error_fault="infrastructure")
            kwargs = self.create_kwargs(req, name, submission, out)
            # Registered before create(): Ctrl-C between the engine creating it and us
            # hearing back must still find it.
            with self._lock:
                self._running.add(name)
            try:
                container = self.client.containers.create(**kwargs)
                container.start()
                timed_out, code = self._wait(container, start + bound)
                if timed_out:
                    self._kill(container)
                container.reload()
                oom = bool(container.attrs.get("State", {}).get("OOMKilled"))
                log = _bounded_log(container.logs(stdout=True, stderr=True))
                if skipped:
                    log = (f"not given to the grader (links, special files, over "
                           f"{STAGE_BYTES >> 20} MiB): {', '.join(skipped[:20])}\n" + log)
            except docker.errors.ImageNotFound as exc:
                raise SandboxError(f"the grading image {self.image} is missing: run "
                                   f"`grade sandbox build`") from exc
            except (requests.exceptions.ConnectionError, docker.errors.APIError) as exc:
                with self._lock:
                    stopped = name in self._stopped
                if not stopped:     # else stop_all removed it under us: said below
                    if isinstance(exc, docker.errors.APIError) and exc.is_client_error():
                        what = ("the grading container vanished"
                                if isinstance(exc, docker.errors.NotFound)
                                else "the Docker engine refused the grading container")
                        return RunOutcome(None, time.monotonic() - start, self.name, limits,
                                          error=f"{what}: {_short(str(exc), 300)}",
                                          error_fault="infrastructure")
                    raise SandboxError(f"the Docker engine stopped answering while grading "
                                       f"{req.submission.id} ({_short(str(exc))}): check "
                                       f"dockerd, then grade again") from exc
            data = None if timed_out else read_report(out / "report.json")
        finally:
            self._remove(name)
            with self._lock:
                stopped = name in self._stopped
                self._stopped.discard(name)
            shutil.rmtree(scratch, ignore_errors=True)
        seconds = time.monotonic() - start
        if stopped:
            return RunOutcome(None, seconds, self.name, limits, log=log,
                              error="grading was interrupted (its container was removed)",
                              error_fault="infrastructure")
        if timed_out:
            return RunOutcome(None, seconds, self.name, limits, log=log,
                              error=f"grading was stopped after {seconds:.0f} s (the wall-clock "
                                    f"bound per submission)", error_fault="submission")
        if data is None:
            if oom:
                return RunOutcome(None, seconds, self.name, limits, log=log,
                                  error=f"the container ran out of memory ({self.limits.memory_mib}"
                                        f" MiB) and the harness ended without a report",
                                  error_fault="submission")
            return RunOutcome(None, seconds, self.name, limits, log=log,
                              error=f"the grader's harness ended (code {code}) without a report",
                              error_fault="infrastructure")
        return RunOutcome(data, seconds, self.name, limits, log=log)

    def _wait(self, container, deadline: float) -> tuple[bool, int | None]:
        """(timed out, exit code). The engine holds the wait request open until the
        container stops; a read time-out on it is our wall clock."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True, None
            try:
                result = container.wait(timeout=max(1, int(remaining + 0.999)))
                return False, result.get("StatusCode")
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                # A time-out shows as either, depending on the transport; an engine that
                # is really gone fails the next call.
                if time.monotonic() < deadline - 0.5:
                    self.client.ping()

    def _kill(self, container) -> None:
        try:
            container.kill()
        except docker.errors.APIError:
            pass   # already stopped

    def _remove(self, name: str) -> None:
        try:
            self.client.api.remove_container(name, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except (docker.errors.APIError, requests.exceptions.RequestException):
            # "removal already in progress" (stop_all raced us) or an engine gone away;
            # stop_all and the next DockerSandbox remove what is left.
            pass
        finally:
            with self._lock:
                self._running.discard(name)

    def _ours(self, owner: str | None = None) -> list:
        labels = [f"{ROLE_LABEL}={ROLE}"]
        if owner:
            labels.append(f"{OWNER_LABEL}={owner}")
        return self.client.containers.list(all=True, filters={"label": labels}, ignore_removed=True)

    def _remove_orphans(self) -> None:
        """Containers left by a grader on this host that died without cleaning up."""
        host = socket.gethostname()
        try:
            for c in self._ours():
                owner = (c.labels or {}).get(OWNER_LABEL, "")
                o_host, _, o_pid = owner.rpartition(":")
                if o_host == host and o_pid.isdigit() and not _pid_alive(int(o_pid)):
                    self._remove(c.name)
        except (docker.errors.APIError, requests.exceptions.RequestException):
            pass

    def stop_all(self) -> None:
        """Ctrl-C: remove every container this process started (a run waiting on one
        returns at once and reports nothing)."""
        with self._lock:
            names = set(self._running)
            self._stopped |= names
        try:
            names |= {c.name for c in self._ours(self.owner)}
        except (docker.errors.APIError, requests.exceptions.RequestException):
            pass
        for name in names:
            self._remove(name)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------------------- grade sandbox ...

def cli_sandbox(argv: list[str]) -> int:
    """`grade sandbox build [--offline|--online]` and `grade sandbox status`."""
    parser = argparse.ArgumentParser(prog="grade sandbox",
                                     description="The Docker image submissions are graded in.")
    sub = parser.add_subparsers(dest="action", required=True)
    build = sub.add_parser("build", help=f"build {IMAGE}")
    how = build.add_mutually_exclusive_group()
    how.add_argument("--offline", action="store_true",
                     help="build on a Debian base made with debootstrap (no registry needed)")
    how.add_argument("--online", action="store_true",
                     help=f"build on {ONLINE_BASE} (pulled from the registry if missing)")
    sub.add_parser("status", help=f"say whether {IMAGE} is present and up to date")
    ns = parser.parse_args(argv)
    try:
        if ns.action == "build":
            offline = True if ns.offline else (False if ns.online else None)
            build_image(offline=offline)
            return 0
        text = image_status()
        print(text)
        return 0 if " up to date " in text else 1
    except SandboxError as exc:
        print(f"grade sandbox: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("grade sandbox: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(cli_sandbox(sys.argv[1:]))
