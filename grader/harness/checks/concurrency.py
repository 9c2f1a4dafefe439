"""Concurrency from one process: a silent client blocks nobody, many clients are all served,
and it is done with one thread and no child processes."""

from __future__ import annotations

from grader.contract import Message, join, msg
from grader.harness.checks import evidence
from grader.harness.checks.common import quote
from grader.harness.plugin import Reply, Server, fail
from grader.harness.timing import MANY_DEADLINE, REPLY_DEADLINE


def check_concurrency(server: Server, many: int = 20) -> None:
    a = server.connect("A")
    server.story.did(msg("client A sends nothing"))
    b = server.connect("B")
    reply = server.exchange(b, b"ping", REPLY_DEADLINE)
    if not reply.served:
        server.require_alive(msg("client B sent 'ping'"))
        where = evidence.waiting(server, server.fd_names())
        fail(
            msg(
                "client A connected and sent nothing; client B sent 'ping' and in "
                "{deadline:g} s got no reply, nor did the server read it: the server was "
                "{where}",
                deadline=REPLY_DEADLINE,
                where=where,
            )
        )
    clients = [server.connect(f"M{i}", quiet=True) for i in range(1, many + 1)]
    server.story.did(msg("{many} more clients connected at once", many=many))
    replies = []
    for i, c in enumerate(clients, 1):
        replies.append(Reply(c, b"many-%d;" % i))
        c.send(replies[-1].sent, quiet=True)
    server.story.did(
        msg("each of the {many} clients sent one message before any reply was read", many=many)
    )
    server.await_replies(replies, MANY_DEADLINE)
    unserved = [r.client.name for r in replies if not r.served]
    if unserved:
        server.require_alive(msg("{many} clients connected at once", many=many))
        fail(
            msg(
                "with {many} clients connected at once, {unserved} of them ({names}) got no "
                "reply in {deadline:g} s, nor did the server read their messages; the server "
                "was {where}",
                many=many,
                unserved=len(unserved),
                names=", ".join(unserved[:5]) + ("…" if len(unserved) > 5 else ""),
                deadline=MANY_DEADLINE,
                where=evidence.waiting(server, server.fd_names()),
            )
        )
    server.story.saw(msg("all {many} clients were served", many=many))
    if not server.exchange(a, b"A speaks at last", REPLY_DEADLINE).served:
        server.require_alive(msg("client A finally sent"))
        fail(
            msg(
                "client A, silent until now, got no reply once it spoke, nor did the server "
                "read its message"
            )
        )


def check_single_thread(server: Server) -> None:
    clients = [server.connect(f"T{i}") for i in range(1, 4)]
    replies = [Reply(c, b"how many threads?") for c in clients]
    for r in replies:
        r.client.send(r.sent, quiet=True)
    server.story.did(msg("3 clients connected and each sent a message"))
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
    server.require_alive(msg("three clients connected"))
    # Detached processes (a double fork) are no longer the server's children, but they are
    # still ours: the harness is their subreaper and starts nothing else.
    others = [p for p in server.proc.descendants() if p.pid != server.pid]
    children = max(len(worst.children), len(others))
    server.story.saw(
        msg(
            "the server had {threads} and {others} while serving 3 clients",
            threads=_threads(worst.threads),
            others=_others(children),
        )
    )
    started = [e for e in server.proc.trace() if e["ev"] in ("thread", "fork")]
    if worst.threads == 1 and not children and not started:
        return
    ran = msg(
        "the server ran {threads} and {children} while serving 3 clients; this assignment "
        "asks for one thread, no child processes",
        threads=_threads(worst.threads),
        children=_children(children),
    )
    # The same site once, in the order first seen (a Message compares by its value).
    sites = list(dict.fromkeys(quote(server, e.get("at")) for e in started))
    if not sites:
        fail(ran)
    fail(msg("{ran}; started at {sites}", ran=ran, sites=join(sites, ", ")))


# Whole words per count, so that a language without plurals reads them as one phrase.
def _threads(n: int) -> Message:
    return msg("{n} thread", n=n) if n == 1 else msg("{n} threads", n=n)


def _others(n: int) -> Message:
    return msg("{n} other process", n=n) if n == 1 else msg("{n} other processes", n=n)


def _children(n: int) -> Message:
    return msg("{n} child process", n=n) if n == 1 else msg("{n} child processes", n=n)
