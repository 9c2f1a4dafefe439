"""What the client checks work with: the kit's servers, runs of the student's client
against them, and the kernel's account of the client's socket and of where it waits."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from grader.contract import Message, as_message, join, msg, verbatim
from grader.contract.message import Value
from grader.harness import procobs
from grader.harness.clients import Story
from grader.harness.kitserver import HOST, MESSAGE_DEADLINE, POLL, KitServer
from grader.harness.launch import StudentProcess
from grader.harness.plugin import NOT_JUDGED, START_ASLEEP, describe_death, fail, runs_selected
from grader.harness.timing import JOIN_GRACE

ECHO_MESSAGES = [  # (message, pieces the reply is sent back in)
    ("ping", 2),
    ("non-blocking 客户端 says 你好, ½ ☃ and goodbye", 3),
    (
        "".join(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[(i * 7) % 62]
            for i in range(3000)
        ),
        4,
    ),
    ("".join("0123456789 abcdef"[(i * 5) % 17] for i in range(20000)), 5),
]

# What a crash means, as a table: (exception names, words of the student's line, advice).
# The first row whose exception matches and whose words (if any) occur in the line applies.
ADVICE = [
    (
        ("BlockingIOError",),
        ("connect",),
        msg(
            "connect() on a non-blocking socket always raises BlockingIOError: the handshake "
            "has only started. Catch it, then wait until the socket is writable (selectors "
            "EVENT_WRITE)"
        ),
    ),
    (
        ("BlockingIOError", "OSError", "BrokenPipeError", "ConnectionResetError"),
        ("send",),
        msg(
            "send() before the connection is up raises BlockingIOError (or OSError): after "
            "connect(), wait until the socket is writable (selectors EVENT_WRITE) and SO_ERROR "
            "is 0, then send"
        ),
    ),
    (
        ("BlockingIOError",),
        ("recv",),
        msg(
            "recv() on a non-blocking socket raises BlockingIOError while the reply has not "
            "arrived: wait until the socket is readable (selectors EVENT_READ), or catch it "
            "and try again"
        ),
    ),
    (
        ("UnicodeDecodeError",),
        (),
        msg(
            "a piece of the reply can end in the middle of a character: collect the bytes and "
            "decode once the whole reply is there"
        ),
    ),
    (
        ("IndexError",),
        ("argv",),
        msg("the kit runs `python client.py HOST PORT MESSAGE`: the message is sys.argv[3]"),
    ),
    (
        ("ConnectionRefusedError",),
        (),
        msg("connect to the host and port given as sys.argv[1] and sys.argv[2]"),
    ),
]


# --- the student's client ---------------------------------------------------------------------


class Kit:
    """What a check of the client assignment works with: the story, the kit's servers, and
    runs of the student's client against them. Closes every server at the end."""

    def __init__(self, launch, story: Story, submission):
        self.launch = launch
        self.story = story
        self.submission = submission
        self.servers: list[KitServer] = []

    def __enter__(self) -> Kit:
        return self

    def __exit__(self, *exc) -> None:
        for srv in self.servers:
            srv.close()

    def server(
        self,
        expected: bytes,
        pieces: int = 1,
        hold: bool = False,
        backlog: int = 16,
        accepting: bool = True,
    ) -> KitServer:
        srv = KitServer(expected, pieces=pieces, hold=hold, backlog=backlog)
        self.servers.append(srv)
        if accepting:
            srv.start()
        return srv

    def stuck(self, reason: Message) -> None:
        """The client never got as far as connecting: said once, by `runs` (as a server
        that never listens); every other check then says it could not judge."""
        self.submission.config._sg_start_failure = reason
        fail(reason)

    def run(self, srv: KitServer, message: str) -> StudentProcess:
        config = self.submission.config
        if config._sg_start_failure:
            fail(
                NOT_JUDGED
                if runs_selected(config)
                else msg(
                    "not judged: the client never connected: {why}", why=config._sg_start_failure
                )
            )
        proc = self.launch(args=[HOST, str(srv.port), message])
        self.story.did(
            msg(
                "ran `python {entry} {host} {port} {message}`",
                entry=self.submission.entry,
                host=HOST,
                port=srv.port,
                message=shown(message),
            )
        )
        return proc


def fill_story(kit: Kit, filled: int) -> None:
    """The story line of a kit server whose accept queue the kit has filled."""
    kit.story.did(
        msg(
            "the kit's server listens with backlog 0 and {count} idle connection(s) of its "
            "own fill its accept queue: the kernel drops a new connection's SYN",
            count=filled,
        )
    )


def shown(message: str, limit: int = 60) -> str:
    if len(message) <= limit:
        return repr(message)
    return f"{message[:limit]!r}… ({len(message.encode())} bytes)"


def wait_exit(proc: StudentProcess, timeout: float, unless_stuck: KitServer | None = None) -> bool:
    """Wait until the client has ended and its output is all read; False at the deadline.
    With `unless_stuck`: False as well once the client has been asleep START_ASLEEP without
    ever connecting to that server: it waits for something that will not come."""
    deadline = time.monotonic() + timeout
    still = procobs.Stillness()
    while proc.alive():
        if time.monotonic() >= deadline:
            return False
        if unless_stuck is not None and not unless_stuck.conversations:
            if still.look(procobs.activity([proc.pid])) >= START_ASLEEP:
                return False
        time.sleep(POLL)
    for tap in (proc.stdout, proc.stderr):
        if tap is not None:
            tap.join(JOIN_GRACE)
    return True


def death(proc: StudentProcess) -> Message:
    """How the client ended, with its line and, for the course's classic mistakes, advice."""
    text = as_message(describe_death(proc))
    crash = next((e for e in reversed(proc.trace()) if e["ev"] == "crash"), None)
    if not crash:
        return text
    code = proc.line_of(crash.get("at"))
    if code:
        text = join([text, verbatim(f" (`{code[:80]}`)")], "")
    for kinds, words, advice in ADVICE:
        if crash.get("type") in kinds and (not words or any(w in code for w in words)):
            return join([text, advice], "; ")
    return text


def where(proc: StudentProcess, conn_fd: int | None = None) -> Value:
    """Where the client waits, in words."""
    if not proc.alive():
        return msg("no longer running")
    names = {conn_fd: msg("its connection to the kit's server")} if conn_fd is not None else None
    return procobs.describe_wait(proc.pid, names)


def connection_to(
    proc: StudentProcess, srv: KitServer, snap: procobs.Snapshot | None = None
) -> procobs.Connection | None:
    """The client's TCP socket whose peer is the kit's server (the latest, if several)."""
    snap = snap or procobs.snapshot(proc.pid)
    mine = [c for c in snap.connections if c.remote and c.remote[1] == srv.port]
    return max(mine, key=lambda c: c.fd) if mine else None


def wait_for(predicate, timeout: float) -> bool:
    """Poll `predicate` until it holds or the deadline passes (for what should happen)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return bool(predicate())
        time.sleep(POLL)
    return True


def settle(srv: KitServer, proc: StudentProcess) -> None:
    """Once the client has ended, wait until the kit has taken in all it sent: a client that
    exits right after its send must not be judged before the kit accepted its connection
    and read its message (the kernel holds them; only the kit's threads lag)."""
    if not proc.alive():
        wait_for(srv.settled, MESSAGE_DEADLINE)
    kit_fault(srv)


def kit_fault(srv: KitServer) -> None:
    """The kit's own failure to watch a connection is the kit's fault, never the student's."""
    for conv in srv.conversations:
        if conv.kit_error:
            raise RuntimeError(conv.kit_error)


def asleep(pid: int) -> bool:
    """Every thread of the process is in an interruptible sleep (waiting on a socket, a
    selector, a timer): it is waiting, not on its way somewhere."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    states = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as fh:
                states.append(fh.read().rsplit(")", 1)[1].split()[0])
        except (OSError, IndexError):
            continue
    return bool(states) and all(state == "S" for state in states)


@dataclass(frozen=True)
class Look:
    """One look at the client's socket to the kit, from the kernel, in one pass over /proc:
    the process held that socket, with these flags, at that moment."""

    fd: int
    status: str  # the TCP state, e.g. ESTABLISHED or SYN_SENT
    flags: int
    waiting: Value  # where the client waited at that moment

    @property
    def nonblocking(self) -> bool:
        return bool(self.flags & procobs.O_NONBLOCK)


def look(proc: StudentProcess, srv: KitServer) -> Look | None:
    """The client's socket connected (or connecting) to the kit, None when it holds none."""
    snap = procobs.snapshot(proc.pid)
    conn = connection_to(proc, srv, snap)
    if conn is None:
        return None
    desc = snap.descriptors.get(conn.fd)
    if desc is None or not desc.is_socket:
        return None  # closed between the two reads
    if desc.flags is None:
        if proc.alive() and os.path.exists(f"/proc/{proc.pid}/fd/{conn.fd}"):
            # Not the student's fault: the kit could not read the kernel's account.
            raise RuntimeError(
                f"the flags of fd {conn.fd} of process {proc.pid} could not be read from /proc"
            )
        return None
    return Look(conn.fd, conn.status, desc.flags, where(proc, conn.fd))


def blocking_calls(proc: StudentProcess, fd: int) -> list[dict]:
    return [
        e for e in proc.trace() if e["ev"] in ("setblocking", "settimeout") and e.get("fd") == fd
    ]
