"""The client runs to completion and prints the kit's reply whole, however it is cut."""

from __future__ import annotations

import time

from grader.contract import Message, msg
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
    if not wait_exit(proc, RUN_BOUND, unless_stuck=srv):
        reason = msg(
            "the client was still running {bound:g} s after it started: it was {where}; {progress}",
            bound=min(RUN_BOUND, round(proc.elapsed(), 1)),
            where=where(proc),
            progress=srv.progress(),
        )
        if not srv.conversations:
            kit.stuck(reason)
        fail(reason)
    settle(srv, proc)
    code = proc.returncode()
    kit.story.saw(
        msg(
            "the client ended with exit code {code} after {seconds:.2f} s",
            code=str(code),
            seconds=proc.elapsed(),
        )
    )
    kit.story.measure("run_seconds", round(proc.elapsed(), 3))
    if code != 0:
        fail(msg("{death} ({progress})", death=death(proc), progress=srv.progress()))
    if srv.conversation() is None:
        fail(
            msg(
                "the client exited with code 0 without connecting to the kit's server at "
                "{host}:{port} (given as HOST PORT on its command line)",
                host=HOST,
                port=srv.port,
            )
        )


def check_echo(kit: Kit) -> None:
    """All messages at once, each with its own server and its own run of the client."""
    runs = []
    for message, pieces in ECHO_MESSAGES:
        srv = kit.server(message.encode(), pieces=pieces)
        runs.append((message, pieces, srv, kit.run(srv, message)))
    kit.story.did(
        msg(
            "each reply goes back in pieces, each piece once the kernel shows that the "
            "client has read the one before"
        )
    )
    deadline = time.monotonic() + RUN_BOUND
    problems: list[Message] = []
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
        if problem is not None:
            kit.story.saw(problem)
            problems.append(problem)
        else:
            kit.story.saw(
                msg(
                    "the reply of {size} bytes, sent back in {pieces} pieces, was printed whole",
                    size=size,
                    pieces=pieces,
                )
            )
    if len(problems) > 1:
        fail(
            msg(
                "{problem} ({failed} of the {count} messages failed)",
                problem=problems[0],
                failed=len(problems),
                count=len(runs),
            )
        )
    if problems:
        fail(problems[0])


def _reply_account(conv: Conversation, pieces: int) -> Message:
    """What became of the kit's reply, in words."""
    if conv.replied:
        return msg(
            "the kit sent the {size}-byte reply back in {pieces} pieces, each once the client "
            "had read the one before",
            size=conv.reply_size,
            pieces=pieces,
        )
    if conv.sent == 0:
        return msg("the client closed its connection before the kit's reply went out")
    if conv.stalled:
        return msg(
            "the kit sent the first {sent} of the reply's {size} bytes ({pieces} pieces, each "
            "once the client has read the one before) and the client never read them",
            sent=conv.sent,
            size=conv.reply_size,
            pieces=pieces,
        )
    if conv.read == 0:
        return msg("the client closed its connection without reading any of the kit's reply")
    return msg(
        "the client read the first {read} of the reply's {size} bytes (sent in {pieces} "
        "pieces, each once the client had read the one before) and closed its connection",
        read=conv.read,
        size=conv.reply_size,
        pieces=pieces,
    )


def _echo_problem(
    message: str, srv: KitServer, proc: StudentProcess, ended: bool
) -> Message | None:
    data = message.encode()
    what = shown(message)
    conv = srv.conversation()
    state = death(proc) if ended else msg("it was still running, {where}", where=where(proc))
    ok = ended and proc.returncode() == 0
    if conv is None:
        return msg(
            "for the message {message}, the client never connected to the kit's server ({state})",
            message=what,
            state=state,
        )
    if not conv.complete:
        received = msg(
            "for the message {message}, the kit's server received {got} ({count} bytes) "
            "instead of the message's {size} bytes",
            message=what,
            got=preview(bytes(conv.received)),
            count=len(conv.received),
            size=len(data),
        )
        return received if ok else msg("{problem} ({state})", problem=received, state=state)
    out = proc.stdout.text() if proc.stdout else ""
    if message not in out:
        account = _reply_account(conv, srv.pieces)
        printed = (
            msg(
                "for the message {message}, {account}, and the client printed {printed}",
                message=what,
                account=account,
                printed=preview(out.encode(), 60),
            )
            if out
            else msg(
                "for the message {message}, {account}, and the client printed nothing",
                message=what,
                account=account,
            )
        )
        if not ok:
            printed = msg("{problem} ({state})", problem=printed, state=state)
        if out.strip() and message.startswith(out.strip()):
            printed = msg(
                "{problem}; that is only the first part: one recv() returns what has arrived "
                "so far, so read until all the bytes of the reply are there",
                problem=printed,
            )
        return printed
    if conv.unread:
        return msg(
            "for the message {message}, the client printed the message but left without "
            "reading the kit's reply: its connection closed with the reply still unread (the "
            "kernel answered with RST), so what it printed did not come from the reply",
            message=what,
        )
    if conv.closed_early:
        return msg(
            "for the message {message}, the client printed the message but closed its "
            "connection when only {sent} of the {size} bytes of the reply had been sent: what "
            "it printed did not come from the reply",
            message=what,
            sent=conv.sent,
            size=conv.reply_size,
        )
    return None
