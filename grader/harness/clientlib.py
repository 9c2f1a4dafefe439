"""The client assignment's checks: the student's client run as `python client.py HOST PORT
MESSAGE` against the kit's own echo server (kitserver.py), judged from what that server saw
and from the kernel's account of the client's socket."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from grader.harness import procobs
from grader.harness.clients import Story, preview
from grader.harness.kitserver import (  # noqa: F401  (KitServer is this module's API too)
    HOST, MESSAGE_DEADLINE, POLL, Conversation, KitServer)
from grader.harness.launch import StudentProcess
from grader.harness.plugin import describe_death, fail

RUN_BOUND = 10.0          # a client must have finished its conversation within this
HOLD_AT_LEAST = 0.3       # nonblocking: the reply is held back at least this long, and until
HOLD_CPU = 0.05           # the client sleeps in the kernel or has had this much CPU time
                          # (a busy retry loop): measured in the client's own progress, so a
                          # starved sandbox cannot release the reply before the client got to
                          # its recv()
HOLD_MOST = 5.0           # ... but never longer than this
QUEUE_FULL_FOR = 0.3      # connect_wait: the queue stays full this long after the client's SYN
HANDSHAKE_DEADLINE = 8.0  # the client's kernel resends a dropped SYN 1 s, 3 s, 7 s after the first

ECHO_MESSAGES = [         # (message, pieces the reply is sent back in)
    ("ping", 2),
    ("non-blocking 客户端 says 你好, ½ ☃ and goodbye", 3),
    ("".join("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[(i * 7) % 62]
             for i in range(3000)), 4),
    ("".join("0123456789 abcdef"[(i * 5) % 17] for i in range(20000)), 5),
]

# What a crash means, as a table: (exception names, words of the student's line, advice).
# The first row whose exception matches and whose words (if any) occur in the line applies.
ADVICE = [
    (("BlockingIOError",), ("connect",),
     "connect() on a non-blocking socket always raises BlockingIOError: the handshake has "
     "only started. Catch it, then wait until the socket is writable (selectors EVENT_WRITE)"),
    (("BlockingIOError", "OSError", "BrokenPipeError", "ConnectionResetError"),
     ("send",),
     "send() before the connection is up raises BlockingIOError (or OSError): after connect(), "
     "wait until the socket is writable (selectors EVENT_WRITE) and SO_ERROR is 0, then send"),
    (("BlockingIOError",), ("recv",),
     "recv() on a non-blocking socket raises BlockingIOError while the reply has not arrived: "
     "wait until the socket is readable (selectors EVENT_READ), or catch it and try again"),
    (("UnicodeDecodeError",), (),
     "a piece of the reply can end in the middle of a character: collect the bytes and decode "
     "once the whole reply is there"),
    (("IndexError",), ("argv",),
     "the kit runs `python client.py HOST PORT MESSAGE`: the message is sys.argv[3]"),
    (("ConnectionRefusedError",), (),
     "connect to the host and port given as sys.argv[1] and sys.argv[2]"),
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

    def __enter__(self) -> "Kit":
        return self

    def __exit__(self, *exc) -> None:
        for srv in self.servers:
            srv.close()

    def server(self, expected: bytes, pieces: int = 1, hold: bool = False,
               backlog: int = 16, accepting: bool = True) -> KitServer:
        srv = KitServer(expected, pieces=pieces, hold=hold, backlog=backlog)
        self.servers.append(srv)
        if accepting:
            srv.start()
        return srv

    def run(self, srv: KitServer, message: str) -> StudentProcess:
        proc = self.launch(args=[HOST, str(srv.port), message])
        self.story.did(f"ran `python {self.submission.entry} {HOST} {srv.port} "
                       f"{shown(message)}`")
        return proc


def shown(message: str, limit: int = 60) -> str:
    if len(message) <= limit:
        return repr(message)
    return f"{message[:limit]!r}… ({len(message.encode())} bytes)"


def wait_exit(proc: StudentProcess, timeout: float) -> bool:
    """Wait until the client has ended and its output is all read; False at the deadline."""
    deadline = time.monotonic() + timeout
    while proc.alive():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)
    for tap in (proc.stdout, proc.stderr):
        if tap is not None:
            tap.join(2.0)
    return True


def death(proc: StudentProcess) -> str:
    """How the client ended, with its line and, for the course's classic mistakes, advice."""
    text = describe_death(proc)
    crash = next((e for e in reversed(proc.trace()) if e["ev"] == "crash"), None)
    if not crash:
        return text
    code = proc.line_of(crash.get("at"))
    if code:
        text += f" (`{code[:80]}`)"
    for kinds, words, advice in ADVICE:
        if crash.get("type") in kinds and (not words or any(w in code for w in words)):
            return f"{text}; {advice}"
    return text


def where(proc: StudentProcess, conn_fd: int | None = None) -> str:
    """Where the client waits, in words."""
    if not proc.alive():
        return "no longer running"
    names = {conn_fd: "its connection to the kit's server"} if conn_fd is not None else None
    return procobs.describe_wait(proc.pid, names)


def connection_to(proc: StudentProcess, srv: KitServer,
                  snap: procobs.Snapshot | None = None) -> procobs.Connection | None:
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
    status: str       # the TCP state, e.g. ESTABLISHED or SYN_SENT
    flags: int
    waiting: str      # where the client waited at that moment

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
        return None        # closed between the two reads
    if desc.flags is None:
        if proc.alive() and os.path.exists(f"/proc/{proc.pid}/fd/{conn.fd}"):
            # Not the student's fault: the kit could not read the kernel's account.
            raise RuntimeError(f"the flags of fd {conn.fd} of process {proc.pid} could not be "
                               f"read from /proc")
        return None
    return Look(conn.fd, conn.status, desc.flags, where(proc, conn.fd))


def blocking_calls(proc: StudentProcess, fd: int) -> list[dict]:
    return [e for e in proc.trace() if e["ev"] in ("setblocking", "settimeout")
            and e.get("fd") == fd]


# --- the checks -------------------------------------------------------------------------------

def check_runs(kit: Kit) -> None:
    message = "hello, kit"
    srv = kit.server(message.encode())
    proc = kit.run(srv, message)
    if not wait_exit(proc, RUN_BOUND):
        fail(f"the client was still running {RUN_BOUND:g} s after it started: it was "
             f"{where(proc)}; {srv.progress()}")
    settle(srv, proc)
    code = proc.returncode()
    kit.story.saw(f"the client ended with exit code {code} after {proc.elapsed():.2f} s")
    kit.story.measure("run_seconds", round(proc.elapsed(), 3))
    if code != 0:
        fail(f"{death(proc)} ({srv.progress()})")
    if srv.conversation() is None:
        fail(f"the client exited with code 0 without connecting to the kit's server at "
             f"{HOST}:{srv.port} (given as HOST PORT on its command line)")


def check_echo(kit: Kit) -> None:
    """All messages at once, each with its own server and its own run of the client."""
    runs = []
    for message, pieces in ECHO_MESSAGES:
        srv = kit.server(message.encode(), pieces=pieces)
        runs.append((message, pieces, srv, kit.run(srv, message)))
    kit.story.did("each reply goes back in pieces, each piece once the kernel shows that the "
                  "client has read the one before")
    deadline = time.monotonic() + RUN_BOUND
    problems = []
    for message, pieces, srv, proc in runs:
        ended = wait_exit(proc, max(0.0, deadline - time.monotonic()))
        if ended:
            settle(srv, proc)
        conv = srv.conversation()
        if conv is not None:
            # Judge once the kit has sent its reply or given up on it: a client that ends
            # before the reply is sent is seen leaving early, not taken at its word.
            conv.reply_over.wait(max(2.0, deadline - time.monotonic()))
            if ended:
                # How the client's connection ended tells whether it read the reply.
                conv.ended.wait(max(2.0, deadline - time.monotonic()))
        kit_fault(srv)
        problem = _echo_problem(message, srv, proc, ended)
        size = len(message.encode())
        if problem:
            kit.story.saw(problem)
            problems.append(problem)
        else:
            kit.story.saw(f"the reply of {size} bytes, sent back in {pieces} pieces, was printed "
                          f"whole")
    if problems:
        more = (f" ({len(problems)} of the {len(runs)} messages failed)"
                if len(problems) > 1 else "")
        fail(problems[0] + more)


def _reply_account(conv: Conversation, pieces: int) -> str:
    """What became of the kit's reply, in words."""
    if conv.replied:
        return (f"the kit sent the {conv.reply_size}-byte reply back in {pieces} pieces, each "
                f"once the client had read the one before")
    if conv.sent == 0:
        return "the client closed its connection before the kit's reply went out"
    if conv.stalled:
        return (f"the kit sent the first {conv.sent} of the reply's {conv.reply_size} bytes "
                f"({pieces} pieces, each once the client has read the one before) and the "
                f"client never read them")
    if conv.read == 0:
        return "the client closed its connection without reading any of the kit's reply"
    return (f"the client read the first {conv.read} of the reply's {conv.reply_size} bytes "
            f"(sent in {pieces} pieces, each once the client had read the one before) and "
            f"closed its connection")


def _echo_problem(message: str, srv: KitServer, proc: StudentProcess, ended: bool) -> str:
    data = message.encode()
    what = f"for the message {shown(message)}"
    conv = srv.conversation()
    state = death(proc) if ended else f"it was still running, {where(proc)}"
    failed = "" if ended and proc.returncode() == 0 else f" ({state})"
    if conv is None:
        return f"{what}, the client never connected to the kit's server ({state})"
    if not conv.complete:
        return (f"{what}, the kit's server received {preview(bytes(conv.received))} "
                f"({len(conv.received)} bytes) instead of the message's {len(data)} "
                f"bytes{failed}")
    out = proc.stdout.text() if proc.stdout else ""
    if message not in out:
        printed = preview(out.encode(), 60) if out else "nothing"
        hint = ""
        if out.strip() and message.startswith(out.strip()):
            hint = ("; that is only the first part: one recv() returns what has arrived so "
                    "far, so read until all the bytes of the reply are there")
        return (f"{what}, {_reply_account(conv, srv.pieces)}, and the client printed "
                f"{printed}{failed}{hint}")
    if conv.unread:
        return (f"{what}, the client printed the message but left without reading the kit's "
                f"reply: its connection closed with the reply still unread (the kernel answered "
                f"with RST), so what it printed did not come from the reply")
    if conv.closed_early:
        return (f"{what}, the client printed the message but closed its connection when only "
                f"{conv.sent} of the {conv.reply_size} bytes of the reply had been sent: what "
                f"it printed did not come from the reply")
    return ""


def check_nonblocking(kit: Kit) -> None:
    """Kernel evidence only, taken while the client provably holds its socket: first while
    the kit holds its reply back (the client must survive the wait), then, for a client
    that does not wait for the reply, while a full accept queue holds the handshake back
    (every client that waits for its connection in any way is alive for about a second).
    Whether the client read the reply is echo's to judge, not this check's."""
    message = "are you non-blocking?"
    srv = kit.server(message.encode(), hold=True)
    proc = kit.run(srv, message)
    kit.story.did("the kit's server holds its reply back; meanwhile it reads the client's "
                  "socket's flags in /proc/PID/fdinfo")
    looks: list[Look] = []

    def watch() -> None:
        seen = look(proc, srv)
        if seen is not None:
            looks.append(seen)

    def message_in() -> bool:
        watch()
        conv = srv.conversation()
        return (conv is not None and conv.complete) or not proc.alive()

    if not wait_for(message_in, RUN_BOUND):
        fail(f"the kit's server did not receive the client's message within {RUN_BOUND:g} s "
             f"({srv.progress()}); the client was {where(proc)}")
    settle(srv, proc)
    conv = srv.conversation()
    held: list[Look] = []     # the looks while the client waited for the reply
    crashed = False           # it ended with an error while the reply was held back
    if conv is None or not conv.complete:
        wait_exit(proc, 1.0)
        if proc.returncode() != 0:
            fail(f"the client ended before its message reached the kit's server: {death(proc)}")
        kit.story.saw(f"the client exited with code 0 before its message reached the kit's "
                      f"server ({srv.progress()}; 'runs' and 'echo' judge that)")
    else:
        held, crashed = _hold(kit, srv, proc, watch, looks)
    first = held[0] if held else None
    if first is not None:
        kit.story.saw(f"while the reply was held back, the client's socket connected to the "
                      f"kit (fd {first.fd}) had flags {first.flags:o} in /proc/PID/fdinfo: "
                      f"O_NONBLOCK {'set' if first.nonblocking else 'not set'}; the client was "
                      f"{first.waiting}")
    blocking = next((seen for seen in held if not seen.nonblocking), None)
    if blocking is not None:
        fail(f"the client's socket (fd {blocking.fd}, connected to the kit's server) is "
             f"blocking: its flags in /proc/PID/fdinfo ({blocking.flags:o}) lack O_NONBLOCK"
             f"{_blocking_explained(proc, blocking_calls(proc, blocking.fd))}; the client "
             f"was {blocking.waiting}")
    if looks:
        _not_a_timeout_socket(proc, looks[-1].fd)
    if crashed:
        fail(f"the client ended while the kit held its reply back: {death(proc)}")
    connecting = _nonblocking_connect(kit, message)
    if connecting is not None and not connecting.nonblocking:
        fail(f"the client's connect() was blocking: while the handshake was under way its "
             f"socket (fd {connecting.fd}) had no O_NONBLOCK and the client was "
             f"{connecting.waiting}; call setblocking(False) before connect() and handle the "
             f"BlockingIOError it raises")
    if connecting is None and not looks:
        fail("the kit never found the client holding a socket to its server, neither while "
             "the reply was held back nor while the handshake was (see 'runs')")


def _hold(kit: Kit, srv: KitServer, proc: StudentProcess, watch,
          looks: list[Look]) -> tuple[list[Look], bool]:
    """Hold the reply back until the client has provably reached its wait: it sleeps in
    the kernel or has had HOLD_CPU of CPU time (a retry loop), at least HOLD_AT_LEAST; or
    it ended. Measured in the client's own progress, so a starved sandbox cannot release
    the reply before the client got to its recv(). Returns the looks taken meanwhile, and
    whether the client ended with an error before the reply was let go."""
    since, before = time.monotonic(), len(looks)
    cpu0 = procobs.cpu_seconds(proc.pid) or 0.0
    sleeps = 0

    def waiting() -> bool:
        nonlocal sleeps
        watch()
        if not proc.alive():
            return True
        sleeps = sleeps + 1 if asleep(proc.pid) else 0
        if time.monotonic() - since < HOLD_AT_LEAST:
            return False
        cpu = procobs.cpu_seconds(proc.pid)
        return sleeps >= 2 or (cpu is not None and cpu - cpu0 >= HOLD_CPU)

    wait_for(waiting, HOLD_MOST)
    held = looks[before:]
    if not proc.alive():
        wait_exit(proc, 1.0)
        settle(srv, proc)
        if proc.returncode() == 0:
            kit.story.saw(f"the client exited with code 0 while the kit held its reply back: "
                          f"it did not wait for the reply ('echo' judges reading it)")
        return held, proc.returncode() != 0
    kit.story.saw(f"the client was still waiting {time.monotonic() - since:.2f} s later: "
                  f"{where(proc)}")
    srv.reply_allowed.set()
    kit.story.did("the kit's server sent the reply")
    if wait_exit(proc, RUN_BOUND):
        kit.story.saw(f"the client ended with exit code {proc.returncode()}")
    return held, False


def _not_a_timeout_socket(proc: StudentProcess, fd: int) -> None:
    """settimeout() makes the socket O_NONBLOCK underneath; only the trace tells it apart,
    and a trace may fail a check, never pass one."""
    calls = blocking_calls(proc, fd)
    last = calls[-1] if calls else None
    if (last and last["ev"] == "settimeout" and isinstance(last.get("value"), (int, float))
            and last["value"] > 0):
        fail(f"the client's socket (fd {fd}) is a timeout socket, set at "
             f"{proc.quote(last.get('at'))}: Python makes it O_NONBLOCK underneath, but its "
             f"connect() and recv() still wait (up to {last['value']:g} s) and never raise "
             f"BlockingIOError; this assignment asks for setblocking(False)")


def _nonblocking_connect(kit: Kit, message: str) -> Look | None:
    """connect() itself, against a full accept queue: the client's SYN is dropped, so for
    about a second the client is provably inside connect() (blocking) or waiting for it
    (non-blocking), holding its SYN_SENT socket. A client that connects blocking and only
    then calls setblocking(False) shows here; so does the socket of a client that does not
    stay for the reply. None when the client never got that far ('runs', 'connect_wait')."""
    kit.story.did("— the client again, against a kit server whose full accept queue makes the "
                  "handshake take about a second —")
    srv = kit.server(message.encode(), backlog=0, accepting=False)
    n = srv.fill_queue()
    kit.story.did(f"the kit's server listens with backlog 0 and {n} idle connection(s) of its "
                  f"own fill its accept queue: the kernel drops a new connection's SYN")
    proc = kit.run(srv, message)
    pending: Look | None = None

    def connecting() -> bool:
        nonlocal pending
        seen = look(proc, srv)
        if seen is not None and seen.status == "SYN_SENT":
            pending = seen
        return pending is not None or not proc.alive()

    wait_for(connecting, RUN_BOUND)
    srv.open_queue()
    if pending is None:
        kit.story.saw("the client did not get as far as a pending connection (judged by "
                      "'runs' and 'connect_wait')")
        return None
    kit.story.saw(f"while its connection was pending (SYN_SENT), the client's socket fd "
                  f"{pending.fd} had O_NONBLOCK {'set' if pending.nonblocking else 'not set'}; "
                  f"the client was {pending.waiting}")
    _not_a_timeout_socket(proc, pending.fd)
    return pending


def _blocking_explained(proc: StudentProcess, calls: list[dict]) -> str:
    if not calls:
        return "; the client never called setblocking(False) on it"
    last = calls[-1]
    call = (f"setblocking({last.get('flag')})" if last["ev"] == "setblocking"
            else f"settimeout({last.get('value')})")
    return f"; the last call on it was {call} at {proc.quote(last.get('at'))}"


def _slow_handshake(kit: Kit, message: str):
    """Start the client against a kit server whose accept queue is full, and wait until its
    connection is pending (SYN_SENT). Returns (server, process, pending connection), or
    fails the check when the client never gets that far."""
    srv = kit.server(message.encode(), backlog=0, accepting=False)
    n = srv.fill_queue()
    kit.story.did(f"the kit's server listens with backlog 0 and {n} idle connection(s) of its "
                  f"own fill its accept queue: the kernel drops a new connection's SYN")
    proc = kit.run(srv, message)

    pending = None

    def connecting() -> bool:
        nonlocal pending
        pending = connection_to(proc, srv)
        return pending is not None or not proc.alive()

    wait_for(connecting, RUN_BOUND)
    if pending is None:
        if not proc.alive():
            # Too soon for the kit to see its SYN, if it sent one: a crash right after
            # connect(), typically at a send() on the connection that is not up yet.
            wait_exit(proc, 1.0)
            fail(f"the client ended without a connection to the kit's server, whose accept "
                 f"queue was full (a connection would take about a second to come up): "
                 f"{death(proc)}")
        fail(f"the client did not connect to the kit's server within {RUN_BOUND:g} s: it was "
             f"{where(proc)}")
    if pending.status != "SYN_SENT":
        raise RuntimeError(f"the kit's full accept queue did not hold the client's connection "
                           f"back (it was {pending.status} at once)")
    return srv, proc, pending


def check_connect_wait(kit: Kit) -> None:
    """The handshake is made slow by a full accept queue: the kernel drops the client's SYN,
    and its kernel resends it about 1 s later, when the kit has made room."""
    message = "sent once the connection is up"
    srv, proc, pending = _slow_handshake(kit, message)
    syn_seen = time.monotonic()
    snap = procobs.snapshot(proc.pid)
    desc = snap.descriptors.get(pending.fd)
    mode = ("" if desc is None or desc.nonblocking is None else
            " (non-blocking)" if desc.nonblocking else " (blocking)")
    kit.story.saw(f"the client's socket fd {pending.fd}{mode} is connecting (SYN_SENT); its SYN "
                  f"was dropped; the client was {where(proc, pending.fd)}")
    wait_for(lambda: not proc.alive(), QUEUE_FULL_FOR)
    srv.open_queue()
    kit.story.did(f"{time.monotonic() - syn_seen:.2f} s later the kit accepted and closed its "
                  f"own connections: the queue has room for the resent SYN")

    def settled() -> bool:
        conv = srv.conversation()
        if conv is not None and conv.complete:
            return True
        if conv is not None and conv.received_all.is_set():
            # Connected: the kit stops waiting for the message MESSAGE_DEADLINE after that.
            return True
        # Not connected (yet): a client that has ended never will be, once the kit has
        # taken in whatever it left in the accept queue.
        return not proc.alive() and srv.settled()

    wait_for(settled, HANDSHAKE_DEADLINE + MESSAGE_DEADLINE)
    conv = srv.conversation()
    if conv is not None:
        handshake = conv.accepted_at - syn_seen
        kit.story.measure("handshake_seconds", round(handshake, 3))
        kit.story.saw(f"the connection came up {handshake:.2f} s after the kit saw the client's "
                      f"SYN")
    if conv is not None and conv.complete:
        kit.story.saw(f"the kit's server received the whole message "
                      f"{conv.message_at - conv.accepted_at:.2f} s after the connection came up")
        if wait_exit(proc, RUN_BOUND):
            kit.story.saw(f"the client ended with exit code {proc.returncode()}")
        return
    if conv is None:
        if not proc.alive():
            wait_exit(proc, 1.0)
            fail(f"the client ended without a connection to the kit's server, whose accept "
                 f"queue was full (a connection would take about a second to come up): "
                 f"{death(proc)}")
        fail(f"the client's connection was still not up {HANDSHAKE_DEADLINE:g} s after its "
             f"first SYN: it was {where(proc)}")
    lost = (f"the connection came up {conv.accepted_at - syn_seen:.1f} s after the client's "
            f"first SYN, but {conv.progress()}: the client sent before the connection was up "
            f"and that send failed; wait until the socket is writable (selectors EVENT_WRITE) "
            f"after connect(), then send")
    if proc.alive():
        fail(f"{lost}; the client was then {where(proc)}")
    wait_exit(proc, 1.0)
    fail(f"{lost}; then {death(proc)}")
