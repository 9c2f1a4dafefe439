"""Checks of the epoll assignment (IO多路复用 / EpollSelector 编程范式)."""

from grader.harness import checklib


def test_runs(server):
    checklib.check_runs(server)


def test_echo(server):
    checklib.check_echo(server)


def test_disconnect(server):
    checklib.check_disconnect(server)


def test_concurrency(server):
    checklib.check_concurrency(server)


def test_unregister(server):
    checklib.check_unregister(server)


def test_idle_cpu(server):
    checklib.check_idle_cpu(server)


def test_single_thread(server):
    checklib.check_single_thread(server)


def test_uses_epoll(server):
    checklib.check_uses_epoll(server)


def test_cleanup(server):
    checklib.check_cleanup(server)


def test_robustness(start_server):
    checklib.check_robustness(start_server)
