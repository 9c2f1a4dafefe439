"""The server checks an assignment's checks.py calls: each takes a started server (the
`server` fixture; robustness the `start_server` factory) and either returns (pass) or fails
with one sentence in terms of what the grader did and saw.

    from grader.harness import checklib

    def test_idle_cpu(server):
        checklib.check_idle_cpu(server)

    def test_uses_select(server):
        checklib.check_waits_in(server, ("select", "poll"))

A server that never listened is reported once, by `runs`; every other check then says
"not judged: see runs" (the fixture does that before a check starts). The checks live by
topic in grader.harness.checks; this module is their stable public face."""

from __future__ import annotations

from grader.harness.checks.basics import (
    check_disconnect, check_echo, check_runs, check_waits_its_turn)
from grader.harness.checks.cleanup import WAVE, check_cleanup
from grader.harness.checks.common import (
    ECHO_MESSAGES, PEER_GONE, CloseWaiter, echo_or_fail, pattern, quote, serve_or_fail,
    wait_accepted, wait_server_closed)
from grader.harness.checks.concurrency import check_concurrency, check_single_thread
from grader.harness.checks.cpu import check_idle_cpu
from grader.harness.checks.nonblocking import check_nonblocking
from grader.harness.checks.robustness import (
    ROBUSTNESS, check_robustness, robust_half_close, robust_non_utf8, robust_peer_reset,
    robust_slow_reader)
from grader.harness.checks.selector import check_unregister, check_uses_epoll, check_waits_in
from grader.harness.timing import (
    ACCEPT_DEADLINE, CLOSE_DEADLINE, CPU_WINDOW, IDLE_CPU_LIMIT, MANY_DEADLINE, REPLY_DEADLINE,
    SLOW_READER_DEADLINE, STALL)

__all__ = [
    # the checks, one property each (see DESIGN.md, "Check tags")
    "check_runs", "check_echo", "check_disconnect", "check_concurrency", "check_nonblocking",
    "check_unregister", "check_idle_cpu", "check_single_thread", "check_uses_epoll",
    "check_waits_in", "check_cleanup", "check_robustness", "check_waits_its_turn",
    # building blocks for a course's own checks
    "serve_or_fail", "echo_or_fail", "wait_accepted", "wait_server_closed", "CloseWaiter",
    "pattern", "quote", "ECHO_MESSAGES", "PEER_GONE", "WAVE", "ROBUSTNESS",
    "robust_half_close", "robust_non_utf8", "robust_peer_reset", "robust_slow_reader",
    # the bounds they use (grader.harness.timing says why each is what it is)
    "REPLY_DEADLINE", "MANY_DEADLINE", "ACCEPT_DEADLINE", "CLOSE_DEADLINE",
    "SLOW_READER_DEADLINE", "STALL", "CPU_WINDOW", "IDLE_CPU_LIMIT",
]
