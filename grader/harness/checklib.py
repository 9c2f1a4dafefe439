"""The server checks an assignment's checks.py calls: each takes a started server (the
`server` fixture; robustness the `start_server` factory) and either returns (pass) or fails
with one sentence in terms of what the grader did and saw (robustness: one line per scenario,
each with its verdict). Sentences are Messages (grader.contract.msg), so that the host can
translate them; a context handed to echo_or_fail/serve_or_fail is one too.

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
    check_disconnect,
    check_echo,
    check_runs,
    check_waits_its_turn,
)
from grader.harness.checks.cleanup import WAVE, check_cleanup
from grader.harness.checks.common import (
    ECHO_MESSAGES,
    PEER_GONE,
    CloseWaiter,
    echo_or_fail,
    pattern,
    quote,
    serve_or_fail,
    wait_accepted,
    wait_server_closed,
)
from grader.harness.checks.concurrency import check_concurrency, check_single_thread
from grader.harness.checks.cpu import check_idle_cpu
from grader.harness.checks.nonblocking import check_nonblocking
from grader.harness.checks.robustness import (
    ROBUSTNESS,
    check_robustness,
    robust_half_close,
    robust_non_utf8,
    robust_peer_reset,
    robust_slow_reader,
)
from grader.harness.checks.selector import check_unregister, check_uses_epoll, check_waits_in
from grader.harness.timing import (
    ACCEPT_DEADLINE,
    CLOSE_DEADLINE,
    CPU_WINDOW,
    IDLE_CPU_LIMIT,
    MANY_DEADLINE,
    REPLY_DEADLINE,
    SLOW_READER_DEADLINE,
    STALL,
)

__all__ = [
    "ACCEPT_DEADLINE",
    "CLOSE_DEADLINE",
    "CPU_WINDOW",
    "ECHO_MESSAGES",
    "IDLE_CPU_LIMIT",
    "MANY_DEADLINE",
    "PEER_GONE",
    # the bounds they use (grader.harness.timing says why each is what it is)
    "REPLY_DEADLINE",
    "ROBUSTNESS",
    "SLOW_READER_DEADLINE",
    "STALL",
    "WAVE",
    "CloseWaiter",
    "check_cleanup",
    "check_concurrency",
    "check_disconnect",
    "check_echo",
    "check_idle_cpu",
    "check_nonblocking",
    "check_robustness",
    # the checks, one property each (see DESIGN.md, "Check tags")
    "check_runs",
    "check_single_thread",
    "check_unregister",
    "check_uses_epoll",
    "check_waits_in",
    "check_waits_its_turn",
    "echo_or_fail",
    "pattern",
    "quote",
    "robust_half_close",
    "robust_non_utf8",
    "robust_peer_reset",
    "robust_slow_reader",
    # building blocks for a course's own checks
    "serve_or_fail",
    "wait_accepted",
    "wait_server_closed",
]
