"""The client runs to completion and prints the kit's reply whole, however it is cut."""

from __future__ import annotations

import time

from grader.harness.clientchecks.kit import (
    ECHO_MESSAGES,
    Kit,
    death,
    kit_fault,
    settle,
    shown,
    wait_exit,
    where,
)
from grader.harness.clients import preview
from grader.harness.kitserver import HOST, Conversation, KitServer
from grader.harness.launch import StudentProcess
from grader.harness.plugin import fail
from grader.harness.timing import EVENT_GRACE, RUN_BOUND


def check_runs(kit: Kit) -> None:
    message = "hello, kit"
    srv = kit.server(message.encode())
    proc = kit.run(srv, message)
    if not wait_exit(proc, RUN_BOUND):
        fail(
            f"the client was still running {RUN_BOUND:g} s after it started: it was "
            f"{where(proc)}; {srv.progress()}"
        )
    settle(srv, proc)
    code = proc.returncode()
    kit.story.saw(f"the client ended with exit code {code} after {proc.elapsed():.2f} s")
    kit.story.measure("run_seconds", round(proc.elapsed(), 3))
    if code != 0:
        fail(f"{death(proc)} ({srv.progress()})")
    if srv.conversation() is None:
        fail(
            f"the client exited with code 0 without connecting to the kit's server at "
            f"{HOST}:{srv.port} (given as HOST PORT on its command line)"
        )


def check_echo(kit: Kit) -> None:
    """All messages at once, each with its own server and its own run of the client."""
    runs = []
    for message, pieces in ECHO_MESSAGES:
        srv = kit.server(message.encode(), pieces=pieces)
        runs.append((message, pieces, srv, kit.run(srv, message)))
    kit.story.did(
        "each reply goes back in pieces, each piece once the kernel shows that the "
        "client has read the one before"
    )
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
            conv.reply_over.wait(max(EVENT_GRACE, deadline - time.monotonic()))
            if ended:
                # How the client's connection ended tells whether it read the reply.
                conv.ended.wait(max(EVENT_GRACE, deadline - time.monotonic()))
        kit_fault(srv)
        problem = _echo_problem(message, srv, proc, ended)
        size = len(message.encode())
        if problem:
            kit.story.saw(problem)
            problems.append(problem)
        else:
            kit.story.saw(
                f"the reply of {size} bytes, sent back in {pieces} pieces, was printed whole"
            )
    if problems:
        more = f" ({len(problems)} of the {len(runs)} messages failed)" if len(problems) > 1 else ""
        fail(problems[0] + more)


def _reply_account(conv: Conversation, pieces: int) -> str:
    """What became of the kit's reply, in words."""
    if conv.replied:
        return (
            f"the kit sent the {conv.reply_size}-byte reply back in {pieces} pieces, each "
            f"once the client had read the one before"
        )
    if conv.sent == 0:
        return "the client closed its connection before the kit's reply went out"
    if conv.stalled:
        return (
            f"the kit sent the first {conv.sent} of the reply's {conv.reply_size} bytes "
            f"({pieces} pieces, each once the client has read the one before) and the "
            f"client never read them"
        )
    if conv.read == 0:
        return "the client closed its connection without reading any of the kit's reply"
    return (
        f"the client read the first {conv.read} of the reply's {conv.reply_size} bytes "
        f"(sent in {pieces} pieces, each once the client had read the one before) and "
        f"closed its connection"
    )


def _echo_problem(message: str, srv: KitServer, proc: StudentProcess, ended: bool) -> str:
    data = message.encode()
    what = f"for the message {shown(message)}"
    conv = srv.conversation()
    state = death(proc) if ended else f"it was still running, {where(proc)}"
    failed = "" if ended and proc.returncode() == 0 else f" ({state})"
    if conv is None:
        return f"{what}, the client never connected to the kit's server ({state})"
    if not conv.complete:
        return (
            f"{what}, the kit's server received {preview(bytes(conv.received))} "
            f"({len(conv.received)} bytes) instead of the message's {len(data)} "
            f"bytes{failed}"
        )
    out = proc.stdout.text() if proc.stdout else ""
    if message not in out:
        printed = preview(out.encode(), 60) if out else "nothing"
        hint = ""
        if out.strip() and message.startswith(out.strip()):
            hint = (
                "; that is only the first part: one recv() returns what has arrived so "
                "far, so read until all the bytes of the reply are there"
            )
        return (
            f"{what}, {_reply_account(conv, srv.pieces)}, and the client printed "
            f"{printed}{failed}{hint}"
        )
    if conv.unread:
        return (
            f"{what}, the client printed the message but left without reading the kit's "
            f"reply: its connection closed with the reply still unread (the kernel answered "
            f"with RST), so what it printed did not come from the reply"
        )
    if conv.closed_early:
        return (
            f"{what}, the client printed the message but closed its connection when only "
            f"{conv.sent} of the {conv.reply_size} bytes of the reply had been sent: what "
            f"it printed did not come from the reply"
        )
    return ""
