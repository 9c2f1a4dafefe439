"""Checks of the select assignment (IO多路复用 before epoll: select.select / SelectSelector)."""

from __future__ import annotations

from grader.harness import checklib


def test_runs(server):
    checklib.check_runs(server)


def test_echo(server):
    checklib.check_echo(server)


def test_disconnect(server):
    checklib.check_disconnect(server)


def test_concurrency(server):
    checklib.check_concurrency(server)


def test_idle_cpu(server):
    checklib.check_idle_cpu(server)


def test_single_thread(server):
    checklib.check_single_thread(server)


def test_uses_select(server):
    # select(2) and poll(2) both scan the whole list on every call: the lesson before epoll.
    checklib.check_waits_in(server, ("select", "poll"))


def test_cleanup(server):
    checklib.check_cleanup(server)


def test_robustness(start_server):
    checklib.check_robustness(start_server)
