"""Concurrency from one process: a silent client blocks nobody, many clients are all served,
and it is done with one thread and no child processes."""

from __future__ import annotations

from grader.harness.checks import evidence
from grader.harness.checks.common import count as _count
from grader.harness.checks.common import quote
from grader.harness.plugin import Reply, Server, fail
from grader.harness.timing import MANY_DEADLINE, REPLY_DEADLINE


def check_concurrency(server: Server, many: int = 20) -> None:
    a = server.connect("A")
    server.story.did("client A sends nothing")
    b = server.connect("B")
    reply = server.exchange(b, b"ping", REPLY_DEADLINE)
    if not reply.served:
        server.require_alive("client B sent 'ping'")
        where = evidence.waiting(server, server.fd_names())
        fail(
            f"client A connected and sent nothing; client B sent 'ping' and in "
            f"{REPLY_DEADLINE:g} s got no reply, nor did the server read it: the server was "
            f"{where}"
        )
    clients = [server.connect(f"M{i}", quiet=True) for i in range(1, many + 1)]
    server.story.did(f"{many} more clients connected at once")
    replies = []
    for i, c in enumerate(clients, 1):
        replies.append(Reply(c, b"many-%d;" % i))
        c.send(replies[-1].sent, quiet=True)
    server.story.did(f"each of the {many} clients sent one message before any reply was read")
    server.await_replies(replies, MANY_DEADLINE)
    unserved = [r.client.name for r in replies if not r.served]
    if unserved:
        server.require_alive(f"{many} clients connected at once")
        fail(
            f"with {many} clients connected at once, {len(unserved)} of them ("
            f"{', '.join(unserved[:5])}{'…' if len(unserved) > 5 else ''}) got no reply in "
            f"{MANY_DEADLINE:g} s, nor did the server read their messages; the server was "
            f"{evidence.waiting(server, server.fd_names())}"
        )
    server.story.saw(f"all {many} clients were served")
    if not server.exchange(a, b"A speaks at last", REPLY_DEADLINE).served:
        server.require_alive("client A finally sent")
        fail(
            "client A, silent until now, got no reply once it spoke, nor did the server "
            "read its message"
        )


def check_single_thread(server: Server) -> None:
    clients = [server.connect(f"T{i}") for i in range(1, 4)]
    replies = [Reply(c, b"how many threads?") for c in clients]
    for r in replies:
        r.client.send(r.sent, quiet=True)
    server.story.did("3 clients connected and each sent a message")
    worst = server.snapshot()

    def look() -> None:
        nonlocal worst
        snap = server.snapshot()
        if snap.threads + len(snap.children) > worst.threads + len(worst.children):
            worst = snap

    # Whether all three are served is 'concurrency''s business; waiting for it only makes
    # sure the server has done its work for each client while we look.
    server.await_replies(replies, REPLY_DEADLINE, on_look=look)
    look()
    server.require_alive("three clients connected")
    # Detached processes (a double fork) are no longer the server's children, but they are
    # still ours: the harness is their subreaper and starts nothing else.
    others = [p for p in server.proc.descendants() if p.pid != server.pid]
    children = max(len(worst.children), len(others))
    server.story.saw(
        f"the server had {_count(worst.threads, 'thread')} and "
        f"{_count(children, 'other process', 'other processes')} while serving "
        f"3 clients"
    )
    started = [e for e in server.proc.trace() if e["ev"] in ("thread", "fork")]
    if worst.threads == 1 and not children and not started:
        return
    sites = [quote(server, e.get("at")) for e in started]
    because = f"; started at {', '.join(dict.fromkeys(sites))}" if sites else ""
    fail(
        f"the server ran {_count(worst.threads, 'thread')} and "
        f"{_count(children, 'child process', 'child processes')} while serving 3 "
        f"clients; this assignment asks for one thread, no child processes{because}"
    )
