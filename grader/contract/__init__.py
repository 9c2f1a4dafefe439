"""The harness ↔ host contract: the harness's argv, the report it writes, the tracer's events."""

# Stdlib only: the host imports it, and so does the harness inside the sandbox. Each part has
# its module (harness_args, trace, reports, message); every public name is here too, so that
# `from grader.contract import X` is how both sides read it.

from __future__ import annotations

from grader.contract.harness_args import (
    CHECK_LANES,
    CHECKS_BEGUN,
    HARNESS_MODULE,
    PLUGIN_OPTIONS,
    HarnessArgs,
    checks_begun,
)
from grader.contract.message import Message, as_message, join, msg, verbatim
from grader.contract.reports import (
    PROCESSES_KEY,
    REASON_KEY,
    STAGES,
    STORY_KEY,
    CheckMetadata,
    HarnessReport,
    ProcessReport,
    StageReport,
    Story,
    StoryLine,
    TestReport,
)
from grader.contract.trace import (
    BUSY_TIMEOUT,
    EXPLAINING,
    TRACE_KEPT,
    WAIT_SECONDS_PER_UNIT,
    TraceEvent,
    TraceKind,
)

__all__ = [
    "BUSY_TIMEOUT",
    "CHECKS_BEGUN",
    "CHECK_LANES",
    "EXPLAINING",
    "HARNESS_MODULE",
    "PLUGIN_OPTIONS",
    "PROCESSES_KEY",
    "REASON_KEY",
    "STAGES",
    "STORY_KEY",
    "TRACE_KEPT",
    "WAIT_SECONDS_PER_UNIT",
    "CheckMetadata",
    "HarnessArgs",
    "HarnessReport",
    "Message",
    "ProcessReport",
    "StageReport",
    "Story",
    "StoryLine",
    "TestReport",
    "TraceEvent",
    "TraceKind",
    "as_message",
    "checks_begun",
    "join",
    "msg",
    "verbatim",
]
