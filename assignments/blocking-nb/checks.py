"""Checks of the blocking-nb assignment (使用非阻塞套接字实现阻塞的服务端)."""

from grader.harness import checklib


def test_runs(server):
    checklib.check_runs(server)


def test_echo(server):
    checklib.check_echo(server)


def test_disconnect(server):
    checklib.check_disconnect(server)


def test_nonblocking(server):
    checklib.check_nonblocking(server)


def test_waits_its_turn(server):
    checklib.check_waits_its_turn(server)
