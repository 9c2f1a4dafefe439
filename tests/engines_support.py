"""A second Docker engine on this machine, for the tests: its own dockerd with its own data
root, exec root, pid file and socket in a temporary folder, removed whatever happens.

On CI (env CI) or with SOCKETGRADE_REQUIRE_DOCKER set, an engine that cannot be started fails
the test; elsewhere the test is skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import docker
import requests

try:
    from tests.docker_support import _unavailable
except ImportError:
    from docker_support import _unavailable  # type: ignore[no-redef]

# A fresh dockerd answers within seconds (it also starts its own containerd); this is far
# above that, for a loaded machine.
START_SECONDS = 90.0
# dockerd stops its containers (ten seconds each at most, in parallel) before it exits.
STOP_SECONDS = 60.0
POLL_SECONDS = 0.2
NAMESPACE = "socketgrade-second-engine"


class SecondEngine:
    """`dockerd` with everything of its own under `base`: start(), kill() (the daemon dies
    at once, as a crash would), remove() (everything gone, mounts and folder included)."""

    def __init__(self, base: Path):
        self.base = base
        self.socket = base / "docker.sock"
        self.url = f"unix://{self.socket}"
        self.log = base / "dockerd.log"
        self.proc: subprocess.Popen | None = None
        self.killed = False

    def command(self) -> list[str]:
        b = self.base
        return [
            "dockerd",
            "--data-root",
            str(b / "data"),
            "--exec-root",
            str(b / "exec"),
            "--pidfile",
            str(b / "docker.pid"),
            "-H",
            self.url,
            "--bridge",
            "none",
            "--iptables=false",
            "--ip6tables=false",
            # No --containerd: where no system containerd runs (as here: the first engine
            # started its own), dockerd starts one of its own under the exec root, and the
            # two engines' containers never meet. Where a system containerd runs, both
            # engines use it: their own namespaces keep them apart.
            "--containerd-namespace",
            NAMESPACE,
            "--containerd-plugins-namespace",
            f"{NAMESPACE}-plugins",
        ]

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"dockerd exited with code {self.proc.returncode}: {self.tail()}"
                )
            if self.answers():
                return
            time.sleep(POLL_SECONDS)
        raise RuntimeError(f"dockerd did not answer within {START_SECONDS:g} s: {self.tail()}")

    def answers(self) -> bool:
        try:
            # The client asks for the engine's API version as it is made: a ping already.
            docker.DockerClient(base_url=self.url, timeout=5).close()
            return True
        except (docker.errors.DockerException, requests.RequestException, OSError):
            return False

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.url, timeout=60)

    def tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "no log"

    def kill(self) -> None:
        """The daemon dies at once (SIGKILL): its containers and its containerd stay behind
        until remove()."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=STOP_SECONDS)
        self.killed = True

    def _stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_SECONDS)

    def remove(self) -> None:
        """Everything of this engine gone: after a kill, the daemon is started once more on
        the same folders to stop and remove what the dead one left; then stopped, whatever
        still runs from its folders killed, its mounts unmounted and its folder removed."""
        try:
            if self.killed:
                try:
                    self.start()
                    client = self.client()
                    try:
                        for c in client.containers.list(all=True):
                            c.remove(force=True)
                    finally:
                        client.close()
                except (RuntimeError, docker.errors.DockerException, requests.RequestException):
                    pass  # the steps below take it down by force
            self._stop()
        finally:
            self._kill_leftovers()
            self._unmount()
            shutil.rmtree(self.base, ignore_errors=True)

    def _kill_leftovers(self) -> None:
        """Processes started from this engine's folders (its containerd, the shims that
        held its containers), by their pids."""
        marker = str(self.base).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker in cmdline:
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def _unmount(self) -> None:
        """Whatever is still mounted under the folder (overlays, the exec root's shm), the
        deepest first."""
        prefix = str(self.base) + "/"
        try:
            lines = Path("/proc/self/mountinfo").read_text().splitlines()
        except OSError:
            return
        points = [line.split()[4] for line in lines if line.split()[4].startswith(prefix)]
        for point in sorted(set(points), key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def start_second_engine() -> SecondEngine:
    """A running second engine, or the test skipped (failed on CI) with the reason."""
    if shutil.which("dockerd") is None:
        _unavailable(
            "a second engine cannot start: dockerd is not installed "
            "(Debian: apt-get install docker.io)"
        )
    if os.geteuid() != 0:
        _unavailable("a second engine cannot start: a second dockerd needs root")
    # Short: a unix socket's path is at most 107 bytes, and containerd's live under it.
    base = Path(tempfile.mkdtemp(prefix="sg-engine-", dir="/tmp"))
    engine = SecondEngine(base)
    try:
        engine.start()
    except (RuntimeError, OSError) as exc:
        engine.remove()
        _unavailable(f"a second dockerd could not be started: {exc}")
    except BaseException:
        engine.remove()
        raise
    return engine
