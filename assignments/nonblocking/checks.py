"""Checks of the nonblocking assignment (使用非阻塞套接字实现并发)."""

from grader.harness import checklib


def test_runs(server):
    checklib.check_runs(server)


def test_echo(server):
    checklib.check_echo(server)


def test_disconnect(server):
    checklib.check_disconnect(server)


def test_concurrency(server):
    checklib.check_concurrency(server)


def test_nonblocking(server):
    checklib.check_nonblocking(server)


def test_single_thread(server):
    checklib.check_single_thread(server)


def test_cleanup(server):
    checklib.check_cleanup(server)


def test_robustness(start_server):
    checklib.check_robustness(start_server)
