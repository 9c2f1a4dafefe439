"""Checks of the blocking assignment (普通套接字服务端)."""

from grader.harness import checklib


def test_runs(server):
    checklib.check_runs(server)


def test_echo(server):
    checklib.check_echo(server)


def test_disconnect(server):
    checklib.check_disconnect(server)


def test_waits_its_turn(server):
    checklib.check_waits_its_turn(server)
