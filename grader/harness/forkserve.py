"""The fork server's side: an interpreter started once that forks each run of the student's
program (the harness's side, and why: forkserver.py).

Started as ``python -I -S -u boot.py --serve FD`` with the interpreter and flags of a run,
as the harness's uid, it loads boot.py's hooks and what they wrap, and then answers on the
SOCK_SEQPACKET socket FD, one JSON message at a time:

  {"do": "spawn", "argv": [ENTRY, ARGS...], "env": {...}, "cwd": DIR, "user": UID | null,
   "rlimits": [[RESOURCE, SOFT, HARD], ...], "nproc": N | null}
      with three descriptors: the run's stdout and stderr, and the write end of a pipe that
      gets the run's wait status ("%d\\n", as waitpid gives it) once it has ended.
      Answer: {"pid": PID} or {"error": "..."} (the run could not be set up).
  {"do": "server"} with one descriptor: a socket of the same kind. A child becomes a server
      of its own on it (a lane's); answer: {"pid": PID}.

A run is set up as boot.py's command line would be under subprocess.Popen: a session of its
own, stdin as the server's (/dev/null), the rlimits, no new privileges, the uid and gid,
the environment, the folder; then serve() returns in it and boot.py goes on with main(). A
server is the subreaper of what its runs leave behind, and reaps it; it exits when its
socket's other end is closed. Like boot.py, it imports nothing from the kit.
"""

import ctypes
import json
import os
import resource
import select
import signal
import socket
import sys

PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_SET_DUMPABLE = 4
MAX_MESSAGE = 1 << 20
# A run's setup error pipe is moved here, below what the run will open.
SETUP_FD = 3


class _Server:
    def __init__(self, ctl_fd):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.serve_on(ctl_fd)

    def serve_on(self, ctl_fd):
        self.libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        self.ctl = socket.socket(fileno=ctl_fd)
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, _ignore)
        self.statuses = {}  # pid of a run -> the write end of its status pipe

    def leave(self):
        """In a forked child: drop the server's descriptors without touching anyone's."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.close(self.ctl.detach())
        for fd in (self.wake_r, self.wake_w, *self.statuses.values()):
            os.close(fd)
        self.statuses = {}

    def loop(self):
        """Serve until the harness closes its end; returns (request, fds) in a forked run."""
        while True:
            ready, _, _ = select.select([self.ctl.fileno(), self.wake_r], [], [])
            if self.wake_r in ready:
                self._reap()
            if self.ctl.fileno() in ready:
                try:
                    data, fds, _, _ = socket.recv_fds(self.ctl, MAX_MESSAGE, 4)
                except ConnectionError:
                    data, fds = b"", []
                if not data:
                    os._exit(0)
                run = self._answer(json.loads(data), fds)
                if run is not None:
                    return run

    def _reap(self):
        try:
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            fd = self.statuses.pop(pid, None)
            if fd is not None:
                try:
                    os.write(fd, b"%d\n" % status)
                except OSError:
                    pass
                os.close(fd)

    def _reply(self, answer):
        try:
            self.ctl.send(json.dumps(answer).encode())
        except OSError:  # the harness is gone
            os._exit(0)

    def _answer(self, request, fds):
        if request.get("do") == "server":
            pid = os.fork()
            if pid == 0:
                self.leave()
                self.serve_on(fds[0])
                return None
            os.close(fds[0])
            self._reply({"pid": pid})
            return None
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            self._reply({"error": f"a run needs 3 descriptors, not {len(fds)}"})
            return None
        setup_r, setup_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            setup = [setup_w]  # where the setup's error goes, wherever it is moved
            try:
                os.close(setup_r)
                self.leave()
                _become_run(request, fds, setup, self.libc)
            except BaseException as exc:
                try:
                    os.write(setup[0], repr(exc).encode()[:4000] or b"?")
                finally:
                    os._exit(127)
            return request
        os.close(setup_w)
        os.close(fds[0])
        os.close(fds[1])
        error = b""
        while chunk := os.read(setup_r, 4096):
            error += chunk
        os.close(setup_r)
        if error:
            os.close(fds[2])
            os.waitpid(pid, 0)
            self._reply({"error": error.decode(errors="replace")})
        else:
            self.statuses[pid] = fds[2]
            self._reply({"pid": pid})
        return None


def _ignore(signum, frame):
    pass


def _become_run(request, fds, setup, libc):
    """In the forked child: what Popen's child does for a run before it execs boot.py.
    `setup` holds the descriptor of the setup's error pipe, moved to SETUP_FD here."""
    stdout, stderr, status = fds
    os.close(status)
    os.setsid()
    os.dup2(stdout, 1)
    os.dup2(stderr, 2)
    if setup[0] != SETUP_FD:
        os.dup2(setup[0], SETUP_FD)
        setup[0] = SETUP_FD
    os.closerange(SETUP_FD + 1, 1 << 20)
    os.chdir(request["cwd"])
    for res, soft, hard in request["rlimits"]:
        try:
            resource.setrlimit(res, (soft, hard))
        except (ValueError, OSError):
            pass
    user = request["user"]
    if user is not None and request["nproc"]:
        resource.setrlimit(resource.RLIMIT_NPROC, (request["nproc"], request["nproc"]))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if user is not None:
        os.setgroups([])
        os.setgid(user)
        os.setuid(user)
        # A change of uid without an exec leaves the process undumpable: its /proc files
        # would then be root's, and the harness reads them as the run's uid. An exec would
        # have made it dumpable again; nothing of the server's is secret.
        if libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE)")
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = [sys.argv[0], *request["argv"]]
    os.close(SETUP_FD)  # set up: the server hears the end of the pipe and answers


def serve(ctl_fd, preload):
    """Serve on `ctl_fd`; return only in a forked run, ready for boot.py's main()."""
    try:
        preload()  # what fails here fails again in the run, which traces why
    except Exception:
        pass
    # What every run imports (the hooks' targets, runpy's and the stack dump's helpers):
    # once here, not in each run.
    import faulthandler  # noqa: F401
    import fcntl  # noqa: F401
    import pkgutil  # noqa: F401
    import selectors  # noqa: F401

    _Server(ctl_fd).loop()
