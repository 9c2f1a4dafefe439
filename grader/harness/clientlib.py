"""The client assignment's checks, as an assignment's checks.py calls them: the student's
client run as `python client.py HOST PORT MESSAGE` against the kit's own echo server
(kitserver.py), judged from what that server saw and from the kernel's account of the
client's socket.

    from grader.harness import clientlib

    @pytest.fixture
    def kit(launch, story, submission):
        with clientlib.Kit(launch, story, submission) as k:
            yield k

    def test_connect_wait(kit):
        clientlib.check_connect_wait(kit)

The checks live by topic in grader.harness.clientchecks; this module is their stable public
face."""

from __future__ import annotations

from grader.harness.clientchecks.connect_wait import check_connect_wait
from grader.harness.clientchecks.echo import check_echo, check_runs
from grader.harness.clientchecks.kit import (
    ADVICE,
    ECHO_MESSAGES,
    Kit,
    Look,
    asleep,
    blocking_calls,
    connection_to,
    death,
    kit_fault,
    look,
    settle,
    shown,
    wait_exit,
    wait_for,
    where,
)
from grader.harness.clientchecks.nonblocking import check_nonblocking
from grader.harness.kitserver import HOST, Conversation, KitServer
from grader.harness.timing import (
    HANDSHAKE_DEADLINE,
    HOLD_AT_LEAST,
    HOLD_CPU,
    HOLD_MOST,
    MESSAGE_DEADLINE,
    POLL,
    QUEUE_FULL_FOR,
    RUN_BOUND,
)

__all__ = [
    "ADVICE",
    "ECHO_MESSAGES",
    "HANDSHAKE_DEADLINE",
    "HOLD_AT_LEAST",
    "HOLD_CPU",
    "HOLD_MOST",
    "HOST",
    "MESSAGE_DEADLINE",
    "POLL",
    "QUEUE_FULL_FOR",
    # the bounds they use (grader.harness.timing says why each is what it is)
    "RUN_BOUND",
    "Conversation",
    # what they work with
    "Kit",
    "KitServer",
    "Look",
    "asleep",
    "blocking_calls",
    "check_connect_wait",
    "check_echo",
    "check_nonblocking",
    # the checks, one property each
    "check_runs",
    "connection_to",
    "death",
    "kit_fault",
    "look",
    "settle",
    "shown",
    "wait_exit",
    "wait_for",
    "where",
]
