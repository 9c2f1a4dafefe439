"""Checks of the client assignment (非阻塞客户端套接的注意点): the student's client against the
kit's own echo server."""

import pytest

from grader.harness import clientlib


@pytest.fixture
def kit(launch, story, submission):
    with clientlib.Kit(launch, story, submission) as k:
        yield k


def test_runs(kit):
    clientlib.check_runs(kit)


def test_echo(kit):
    clientlib.check_echo(kit)


def test_nonblocking(kit):
    clientlib.check_nonblocking(kit)


def test_connect_wait(kit):
    clientlib.check_connect_wait(kit)
