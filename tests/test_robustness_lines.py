"""The robustness verdict reads one line per scenario, each with its own verdict, in every
language; the timeline keeps a heading per scenario."""

from __future__ import annotations

import pytest

from grader import i18n
from grader.contract import Message, msg
from grader.harness.checks import robustness
from grader.harness.clients import Story
from grader.harness.plugin import fail


class FakeServer:
    """What check_robustness asks of a started server: its story, and to be stopped."""

    def __init__(self, story: Story):
        self.story = story
        self.stopped = False

    def teardown(self) -> None:
        self.stopped = True


def _crashes(server) -> Message | None:
    fail(msg("the server died after {context}: {death}", context="x", death="boom"))


def _passes(server) -> Message | None:
    return None


def _stalls(server) -> Message | None:
    return msg("a new client could not connect")


def _run(monkeypatch, scenarios) -> tuple[BaseException, Story, list[FakeServer]]:
    monkeypatch.setattr(robustness, "ROBUSTNESS", scenarios)
    story, servers = Story(), []

    def start_server() -> FakeServer:
        servers.append(FakeServer(story))
        return servers[-1]

    with pytest.raises(pytest.fail.Exception) as caught:
        robustness.check_robustness(start_server)
    return caught.value, story, servers


def test_each_scenario_is_its_own_line_with_its_own_verdict(monkeypatch):
    exc, story, servers = _run(
        monkeypatch,
        [
            (msg("half-close"), _passes),
            (msg("non-UTF-8 bytes"), _crashes),
            (msg("peer reset"), _stalls),
            (msg("slow reader"), _passes),
        ],
    )
    reason = exc.sg_reason  # type: ignore[attr-defined]
    assert str(reason).splitlines() == [
        "✗ non-UTF-8 bytes: the server died after x: boom",
        "✗ peer reset: a new client could not connect",
        "✓ half-close",
        "✓ slow reader",
    ]
    assert str(exc) == str(reason)
    assert all(s.stopped for s in servers) and len(servers) == 4
    headings = [line["text"] for line in story.lines]
    assert "— scenario: half-close (fresh server) —" in headings
    assert "— scenario: slow reader (fresh server) —" in headings
    zh = i18n.Speaker("zh").render(reason).splitlines()
    assert len(zh) == 4 and zh[0].startswith("✗ 非 UTF-8 字节") and zh[2] == "✓ 半关闭"


def test_no_verdict_when_every_scenario_passes(monkeypatch):
    monkeypatch.setattr(robustness, "ROBUSTNESS", [(msg("half-close"), _passes)])
    robustness.check_robustness(lambda: FakeServer(Story()))
